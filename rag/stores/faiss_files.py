"""The files of a FAISS index directory (layout in rag/stores/faiss.py): names, the live
generation, manifest and vector files, atomic writes, the writer lock and the sweep of
what a killed writer left behind. Shared by the reader (faiss.py) and the writer
(faiss_write.py)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, IndexCorruptError, IndexLockedError, IndexNotFoundError
from ..manifest import Manifest
from .vector_index import load_faiss as _faiss

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS_DB = "chunks.sqlite"
LOCK = ".lock"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, page INTEGER, heading TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL,
    location TEXT NOT NULL DEFAULT '', ocr INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE TABLE IF NOT EXISTS pages (
    source TEXT NOT NULL, page INTEGER, "offset" INTEGER NOT NULL, text TEXT NOT NULL, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pages_source ON pages(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, text, tokenize='porter unicode61');
"""


# Columns added after format 2 was fixed: an older index lacks them (its readers ignore
# them), so a writer adds them to the copy it writes and a reader of an older index
# reads their defaults.
LATE_COLUMNS = {"location": "TEXT NOT NULL DEFAULT ''", "ocr": "INTEGER NOT NULL DEFAULT 0"}


def chunk_columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(chunks)")}


def exists(index_dir: Path) -> bool:
    return (index_dir / CURRENT).is_file()


def _not_a_folder(index_dir: Path) -> ConfigError:
    """The error for an index directory that is a file, or lies under one."""
    file = next((p for p in (index_dir, *index_dir.parents) if p.is_file()), index_dir)
    return ConfigError(
        f"the index directory {index_dir} cannot be used: {file} is a file, not a folder; "
        "pass --index-dir a folder (rag ingest creates it)"
    )


def live_generation(index_dir: Path) -> Path:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFoundError(
            f"no index at {Path(index_dir).absolute()}: build one with `rag ingest <folder>` (or pass --index-dir; "
            "the default, indexes/default, is under the current folder)"
        ) from None
    except NotADirectoryError:
        raise _not_a_folder(index_dir) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {index_dir / CURRENT}: {exc}") from None
    if not name.startswith("gen-") or "/" in name:
        raise IndexCorruptError(f"{index_dir / CURRENT} is damaged (names {name[:40]!r}); rebuild with --rebuild")
    return index_dir / name


def read_manifest(gen_dir: Path) -> Manifest:
    path = gen_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; rebuild the index with --rebuild") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{path} is damaged ({exc}); rebuild the index with --rebuild") from None
    return Manifest.from_json(data, str(path))


def _read_vectors(path: Path) -> Any:
    faiss = _faiss()
    if not path.is_file():
        raise IndexCorruptError(f"{path} is missing; rebuild the index with --rebuild")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise IndexCorruptError(f"{path} is damaged ({first[:120]}); rebuild the index with --rebuild") from None


def sweep(index_dir: Path) -> None:
    """Delete every generation but the live one, and temporary files: what a writer
    killed before or after its flip leaves behind. Call it holding the write lock;
    open readers keep their files (and a reader that lost the race retries)."""
    index_dir = Path(index_dir)
    try:
        live = live_generation(index_dir) if exists(index_dir) else None
    except IndexCorruptError:
        return  # with CURRENT unreadable nothing is known to be debris
    for child in index_dir.glob("gen-*"):
        if child != live and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
    for tmp in index_dir.glob("*.tmp"):
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock, or fail at once if another process holds it.

    The OS drops the lock when the holder dies, so a killed ingest never leaves it stale.
    """
    index_dir = Path(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _not_a_folder(index_dir) from None
    with open(index_dir / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IndexLockedError(
                    f"another process is writing the index at {index_dir}; wait for it to finish "
                    "(search and ask keep working meanwhile)"
                ) from None
            raise
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _next_free_number(index_dir: Path) -> int:
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    return max(numbers, default=0) + 1


def _copy_db(src: Path, dst: Path) -> None:
    try:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as s, sqlite3.connect(dst) as d:
            s.backup(d)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{src} is damaged ({exc}); rebuild the index with --rebuild") from None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def bytes_on_disk(index_dir: Path) -> int:
    """Bytes of the index's files, each hard-linked file counted once."""
    seen: dict[tuple[int, int], int] = {}
    for p in Path(index_dir).rglob("*"):
        if p.is_file():
            st = p.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())
