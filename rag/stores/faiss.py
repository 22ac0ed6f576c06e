"""The on-disk index: FAISS vectors + SQLite chunk metadata + a JSON manifest.

Layout of an index directory:

    CURRENT              name of the live generation, replaced atomically
    gen-000007/
        manifest.json    format version, embedder, chunking, per-file hashes
        vectors.faiss    flat or IVF FAISS index (rag/stores/vector_index.py): ids are chunk ids
        chunks.sqlite    chunks(id, source, page, heading, start, end, text, tokens), pages,
                         chunks_fts: an FTS5 (BM25) index of the chunks, rowid = chunk id

A write never touches the live generation: `FaissWriter` builds the next one beside it
and `commit()` flips CURRENT with os.replace, so readers (and a process killed
mid-write) always see one whole, consistent generation. The compromise is that each
commit copies the metadata database; fine for the sizes a flat index serves.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import logging

import numpy as np

from . import vector_index
from ..errors import ConfigError, IndexCorruptError, IndexLockedError, IndexNotFoundError
from ..types import Chunk, Hit, Page
from ..text import fts_query
from ..manifest import Draft, FileRecord, Manifest
from .vector_index import load_faiss as _faiss

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS_DB = "chunks.sqlite"
LOCK = ".lock"

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, page INTEGER, heading TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE TABLE IF NOT EXISTS pages (
    source TEXT NOT NULL, page INTEGER, "offset" INTEGER NOT NULL, text TEXT NOT NULL, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pages_source ON pages(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, text, tokenize='porter unicode61');
"""


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
            f"no index at {index_dir}: build one with `rag ingest <folder>` (or pass --index-dir)"
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


class FaissStore:
    """A read-only view of the live generation of an index."""

    def __init__(self, index_dir: Path, gen_dir: Path, manifest: Manifest, vectors: Any) -> None:
        self.index_dir = index_dir
        self.gen_dir = gen_dir
        self.manifest = manifest
        self._vectors = vectors
        self._db = sqlite3.connect(f"file:{gen_dir / CHUNKS_DB}?mode=ro", uri=True, check_same_thread=False)

    @classmethod
    def open(cls, index_dir: Path) -> "FaissStore":
        index_dir = Path(index_dir)
        for attempt in range(3):
            gen_dir = live_generation(index_dir)
            try:
                manifest = read_manifest(gen_dir)
                vectors = _read_vectors(gen_dir / VECTORS)
                _prepare(vectors, manifest, gen_dir)
                store = cls(index_dir, gen_dir, manifest, vectors)
            except (IndexCorruptError, sqlite3.OperationalError):
                # A writer may have swept this generation right after we read CURRENT.
                if attempt < 2 and live_generation(index_dir) != gen_dir:
                    continue
                raise
            store._check()
            return store
        raise AssertionError("unreachable")

    def _check(self) -> None:
        try:
            (rows,) = self._db.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.gen_dir / CHUNKS_DB} is damaged ({exc}); rebuild with --rebuild") from None
        if not (rows == self._vectors.ntotal == self.manifest.chunks):
            raise IndexCorruptError(
                f"index at {self.index_dir} is inconsistent: {rows} chunk rows, {self._vectors.ntotal} vectors, "
                f"manifest says {self.manifest.chunks}; rebuild with --rebuild"
            )
        if self._vectors.d != self.manifest.embedder.dim:
            raise IndexCorruptError(f"{self.gen_dir / VECTORS} has dimension {self._vectors.d}, manifest says otherwise")

    @property
    def dim(self) -> int:
        return self.manifest.embedder.dim

    @property
    def size(self) -> int:
        return int(self._vectors.ntotal)

    def files(self) -> dict[str, FileRecord]:
        return dict(self.manifest.files)

    @property
    def location(self) -> str:
        return str(self.index_dir)

    def search(self, query_vectors: np.ndarray, k: int, where: Any = None) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, inner product) per query row. `where` is a hint only: the
        retriever filters hits itself, and a flat scan gains nothing from it."""
        if self.size == 0:
            return [[] for _ in range(len(query_vectors))]
        scores, ids = self._vectors.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(k, self.size))
        return [[(int(i), float(s)) for i, s in zip(row_i, row_s) if i >= 0] for row_i, row_s in zip(ids, scores)]

    def lexical_search(self, query: str, k: int, where: Any = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score; higher is better) for a question's content words."""
        match = fts_query(query)
        if not match:
            return []
        try:
            rows = self._db.execute(
                "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, k),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.gen_dir / CHUNKS_DB} lexical index is damaged ({exc}); rebuild with --rebuild") from None
        return [(int(i), -float(score)) for i, score in rows]

    def idf(self, words: Iterable[str]) -> dict[str, float]:
        """Inverse document frequency of each word over the chunks: log((N + 1) / (df + 0.5)),
        df counted by the lexical index (so "tokenizers" also finds "tokenizer")."""
        out: dict[str, float] = {}
        try:
            n = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            for w in words:
                term = '"' + w.replace('"', "") + '"'
                df = self._db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (term,)).fetchone()[0]
                out[w] = math.log((n + 1) / (df + 0.5))
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.gen_dir / CHUNKS_DB} lexical index is damaged ({exc}); rebuild with --rebuild") from None
        return out

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """The stored (normalised) vectors of some chunks."""
        return np.vstack([self._vectors.reconstruct(int(i)) for i in ids]) if ids else np.zeros((0, self.dim), np.float32)

    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
        rows = self.chunk_rows([cid for cid, _ in ranked])
        out = []
        for rank, (cid, score) in enumerate(ranked, start=1):
            r = rows.get(cid)
            if r is None:
                raise IndexCorruptError(f"chunk {cid} is in {VECTORS} but not in {CHUNKS_DB}; rebuild with --rebuild")
            out.append(Hit(rank, score, cid, r[0], r[1], r[2], r[3], r[4], r[5]))
        return out

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        try:
            cur = self._db.execute(
                f'SELECT id, source, page, heading, start, "end", text FROM chunks WHERE id IN ({marks})', ids
            )
            return {row[0]: row[1:] for row in cur}
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.gen_dir / CHUNKS_DB} is damaged ({exc}); rebuild with --rebuild") from None

    def page_text(self, source: str, page: int | None) -> str | None:
        """The stored text of a page (a large text file's segments joined back)."""
        rows = self._db.execute(
            'SELECT text FROM pages WHERE source = ? AND page IS ? ORDER BY "offset"', (source, page)
        ).fetchall()
        return "".join(r[0] for r in rows) if rows else None

    def export(self, batch: int = 4096) -> Iterator[tuple[list[int], list[Chunk], np.ndarray]]:
        """Every chunk with its id and stored vector, in id order, a batch at a time."""
        last = -1
        while True:
            rows = self._db.execute(
                'SELECT id, source, page, heading, start, "end", text, tokens FROM chunks WHERE id > ? '
                "ORDER BY id LIMIT ?", (last, batch),
            ).fetchall()
            if not rows:
                return
            ids = [int(r[0]) for r in rows]
            chunks = [Chunk(text=r[6], source=r[1], page=r[2], heading=r[3], start=r[4], end=r[5], tokens=r[7])
                      for r in rows]
            yield ids, chunks, self.vectors_of(ids)
            last = ids[-1]

    def pages(self) -> Iterator[Page]:
        """Every stored page (or segment of a large text file)."""
        for source, page, offset, text in self._db.execute(
            'SELECT source, page, "offset", text FROM pages ORDER BY source, page, "offset"'
        ):
            yield Page(source=source, page=page, offset=offset, text=text, kind="text")

    def refresh(self) -> None:
        """A FAISS store is the generation it opened (reopen to see later commits)."""

    def close(self) -> None:
        self._db.close()


def _prepare(vectors: Any, manifest: Manifest, gen_dir: Path) -> None:
    try:
        vector_index.prepare(vectors, vector_index.describe(manifest.backend.get("vectors")))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(
            f"{gen_dir / MANIFEST} does not describe {gen_dir / VECTORS} ({exc!r}); rebuild the index with --rebuild"
        ) from None


def _read_vectors(path: Path) -> Any:
    faiss = _faiss()
    if not path.is_file():
        raise IndexCorruptError(f"{path} is missing; rebuild the index with --rebuild")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise IndexCorruptError(f"{path} is damaged ({first[:120]}); rebuild the index with --rebuild") from None


class FaissWriter:
    """Builds the next generation of an index; nothing is visible until `commit()`.

    A manifest without a "vectors" entry (a new index) gets one from `vectors`, the
    storage policy of the settings: the FAISS part of the manifest is this store's to fill."""

    def __init__(self, index_dir: Path, manifest: Manifest, fresh: bool = False,
                 vectors: dict[str, Any] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        faiss = _faiss()
        live = None if fresh or not exists(self.index_dir) else live_generation(self.index_dir)
        number = int(live.name.split("-")[1]) + 1 if live else _next_free_number(self.index_dir)
        self.gen_dir = self.index_dir / f"gen-{number:06d}"
        if self.gen_dir.exists():  # debris of a run that died before its commit
            shutil.rmtree(self.gen_dir)
        self.gen_dir.mkdir()
        self.draft = Draft(manifest)
        self.draft.backend["generation"] = self.generation = number
        self.draft.backend.setdefault("vectors", vector_index.describe(vectors))
        self.manifest: Manifest | None = None  # the committed manifest, once commit() ran
        if live:
            _copy_db(live / CHUNKS_DB, self.gen_dir / CHUNKS_DB)
            self._vectors = _read_vectors(live / VECTORS)
        else:
            storage = vector_index.describe(self.draft.backend["vectors"])["storage"]
            self._vectors = vector_index.new_flat(manifest.embedder.dim, storage)
        self._db = sqlite3.connect(self.gen_dir / CHUNKS_DB)
        self._db.executescript(_SCHEMA)
        self.start_id = self.draft.next_id

    def remove_source(self, source: str) -> int:
        """Drop every chunk and page of a file; returns how many chunks went."""
        return self._delete(source, "")

    def _delete(self, source: str, which: str) -> int:
        """Delete a file's chunks and pages: all (""), from before this writer ("old")
        or added by it ("new"). Chunk ids only grow, so `start_id` splits old from new."""
        id_cond = {"": "", "old": " AND id < ?", "new": " AND id >= ?"}[which]
        gen_cond = {"": "", "old": " AND generation < ?", "new": " AND generation >= ?"}[which]
        id_args: tuple[Any, ...] = (source, self.start_id) if which else (source,)
        gen_args: tuple[Any, ...] = (source, self.generation) if which else (source,)
        ids = [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE source = ?" + id_cond, id_args)]
        if ids:
            self._vectors.remove_ids(np.asarray(ids, dtype=np.int64))
            self._db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
        self._db.execute("DELETE FROM chunks WHERE source = ?" + id_cond, id_args)
        self._db.execute("DELETE FROM pages WHERE source = ?" + gen_cond, gen_args)
        if which != "new":
            self.draft.files.pop(source, None)
        return len(ids)

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        """Store chunks (of any files) with their vectors; they count once finish_file runs.
        `ids` keeps the ids chunks had in another index (rag migrate); by default they get new ones."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            return
        ids = self.draft.new_ids(len(chunks), ids)
        self._vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._db.executemany(
            'INSERT INTO chunks (id, source, page, heading, start, "end", text, tokens) VALUES (?,?,?,?,?,?,?,?)',
            [(int(i), c.source, c.page, c.heading, c.start, c.end, c.text, c.tokens) for i, c in zip(ids, chunks)],
        )
        self._db.executemany(
            "INSERT INTO chunks_fts (rowid, heading, text) VALUES (?,?,?)",
            [(int(i), c.heading, c.text) for i, c in zip(ids, chunks)],
        )

    def add_pages(self, pages: Sequence[Page]) -> None:
        self._db.executemany(
            'INSERT INTO pages (source, page, "offset", text, generation) VALUES (?,?,?,?,?)',
            [(p.source, p.page, p.offset, p.text, self.generation) for p in pages],
        )

    def finish_file(self, source: str, record: FileRecord) -> None:
        """The new version of a file is complete: drop its old version, record it."""
        self._delete(source, "old")
        self.draft.files[source] = record

    def discard_file(self, source: str) -> None:
        """A file failed part-way: drop what this writer added for it, keep its old version."""
        self._delete(source, "new")

    def add_file(self, record: FileRecord, source: str, pages: Sequence[Page], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store one whole file's pages, chunks and vectors, replacing any earlier version."""
        self.add_chunks(chunks, vectors)
        self.add_pages(pages)
        self.finish_file(source, record)

    def commit(self) -> Manifest:
        """Write the generation to disk and make it the live one, atomically; returns
        the manifest now live."""
        self._db.commit()
        (count,) = self._db.execute("SELECT count(*) FROM chunks").fetchone()
        self._db.close()
        # The index type follows the size (flat, or IVF past ann_from): rag/stores/vector_index.py.
        self._vectors, self.draft.backend["vectors"] = vector_index.fit(self._vectors, self.draft.backend["vectors"])
        manifest = self.draft.build(int(count))
        faiss = _faiss()
        faiss.write_index(self._vectors, str(self.gen_dir / VECTORS))
        _write_atomic(self.gen_dir / MANIFEST, json.dumps(manifest.to_json(), indent=2, sort_keys=True))
        for name in (VECTORS, CHUNKS_DB):
            _fsync(self.gen_dir / name)
        _fsync(self.gen_dir)
        _write_atomic(self.index_dir / CURRENT, self.gen_dir.name + "\n")
        self._committed = True
        self.manifest = manifest
        _fsync(self.index_dir)
        self._sweep()
        return manifest

    def abort(self) -> None:
        if getattr(self, "_committed", False):
            return  # the flip went through: this generation is the live one now
        try:
            self._db.close()
        finally:
            shutil.rmtree(self.gen_dir, ignore_errors=True)

    def _sweep(self) -> None:
        sweep(self.index_dir)


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
    return sum(p.stat().st_size for p in Path(index_dir).rglob("*") if p.is_file())


class FaissBackend:
    """The FAISS store as a `rag.stores.Backend`: an index directory."""

    name = "faiss"

    def __init__(self, index_dir: Path, vectors: dict[str, Any] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.vectors = vectors  # the storage policy a new index is built with

    @property
    def location(self) -> str:
        return str(self.index_dir)

    def exists(self) -> bool:
        return exists(self.index_dir)

    def read_manifest(self) -> Manifest:
        return read_manifest(live_generation(self.index_dir))

    def open(self) -> FaissStore:
        return FaissStore.open(self.index_dir)

    def writer(self, manifest: Manifest, fresh: bool = False) -> FaissWriter:
        built = vector_index.describe(manifest.backend.get("vectors"))
        policy = vector_index.describe(self.vectors)
        if not fresh and self.vectors is not None and \
                (built["storage"], built["ann_from"]) != (policy["storage"], policy["ann_from"]):
            log.warning("the index at %s keeps the vector storage it was built with (%s, IVF from %d chunks); "
                        "ingest with --rebuild to change it", self.index_dir, built["storage"], built["ann_from"])
        return FaissWriter(self.index_dir, manifest, fresh=fresh, vectors=self.vectors)

    def write_lock(self) -> contextlib.AbstractContextManager[None]:
        return write_lock(self.index_dir)

    def sweep(self) -> None:
        sweep(self.index_dir)

    def bytes_on_disk(self) -> int | None:
        return bytes_on_disk(self.index_dir)
