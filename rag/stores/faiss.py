"""The on-disk index: FAISS vectors + SQLite chunk metadata + a JSON manifest.

Layout of an index directory:

    CURRENT              name of the live generation, replaced atomically
    gen-000007/
        manifest.json    format version, embedder, chunking, per-file hashes
        vectors.faiss    flat or IVF FAISS index (rag/stores/vector_index.py): ids are chunk ids
        chunks.sqlite    chunks(id, source, page, heading, start, end, text, tokens, location,
                         ocr), pages,
                         chunks_fts: an FTS5 (BM25) index of the chunks, rowid = chunk id

        seg-000009.sqlite  a delta segment (the same tables and `dead`), seg-000009.faiss
                         its vectors: see rag/stores/faiss_segments.py

A write never touches the live generation: `FaissWriter` builds the next one beside it
and `commit()` flips CURRENT with os.replace, so readers (and a process killed
mid-write) always see one whole, consistent generation. Files are never changed once
live, so a generation hard-links the files it shares with the one before and a commit
writes only its delta (until a compaction folds the deltas into a new base).

This module reads (FaissStore) and is the backend; faiss_write.py writes (FaissWriter),
faiss_files.py owns the files, the lock and the sweep that both use.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import IndexCorruptError
from ..manifest import FileRecord, Manifest
from ..text import fts_query, search_terms
from ..types import Chunk, Hit, Page
from . import vector_index
from .faiss_files import (  # noqa: F401  (CURRENT and LOCK: this store's file names, for callers)
    CHUNKS_DB, CURRENT, LOCK, MANIFEST, VECTORS, _read_vectors, bytes_on_disk, chunk_columns, exists,
    live_generation, read_manifest, sweep, write_lock,
)
from .faiss_segments import connect, deltas, fts_count, lexical_scores, load_vectors
from .faiss_write import FaissWriter

log = logging.getLogger(__name__)


class FaissStore:
    """A read-only view of the live generation of an index."""

    def __init__(self, index_dir: Path, gen_dir: Path, manifest: Manifest, vectors: Any,
                 db: sqlite3.Connection | None = None) -> None:
        self.index_dir = index_dir
        self.gen_dir = gen_dir
        self.manifest = manifest
        self._vectors = vectors
        self._segs = deltas(manifest.backend)
        self._db = db if db is not None else connect(gen_dir, self._segs)
        self._late_columns: str | None = None

    @property
    def _late(self) -> str:
        """The location and ocr columns, or their defaults in an index written before them."""
        if self._late_columns is None:
            have = chunk_columns(self._db)
            self._late_columns = ", ".join(n if n in have else f"{d} AS {n}" for n, d in (("location", "''"), ("ocr", "0")))
        return self._late_columns

    @classmethod
    def open(cls, index_dir: Path) -> "FaissStore":
        index_dir = Path(index_dir)
        for attempt in range(3):
            gen_dir = live_generation(index_dir)
            try:
                manifest = read_manifest(gen_dir)
                segs = deltas(manifest.backend)
                db = connect(gen_dir, segs)
                try:
                    vectors = load_vectors(gen_dir, segs, db) if segs else _read_vectors(gen_dir / VECTORS)
                    _prepare(vectors, manifest, gen_dir)
                except BaseException:
                    db.close()
                    raise
                store = cls(index_dir, gen_dir, manifest, vectors, db)
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
        return str(Path(self.index_dir).absolute())  # messages name it whatever the working directory

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
            if self._segs:
                return lexical_scores(self._db, len(self._segs), search_terms(query), match, k)
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
                df = fts_count(self._db, len(self._segs), term)
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
            out.append(Hit(rank, score, cid, r[0], r[1], r[2], r[3], r[4], r[5], location=r[6], ocr=bool(r[7])))
        return out

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        try:
            cur = self._db.execute(
                f'SELECT id, source, page, heading, start, "end", text, {self._late} FROM chunks WHERE id IN ({marks})',
                ids,
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
                f'SELECT id, source, page, heading, start, "end", text, tokens, {self._late} FROM chunks '
                "WHERE id > ? ORDER BY id LIMIT ?", (last, batch),
            ).fetchall()
            if not rows:
                return
            ids = [int(r[0]) for r in rows]
            chunks = [Chunk(text=r[6], source=r[1], page=r[2], heading=r[3], start=r[4], end=r[5], tokens=r[7],
                            location=r[8], ocr=bool(r[9])) for r in rows]
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


class FaissBackend:
    """The FAISS store as a `rag.stores.Backend`: an index directory."""

    name = "faiss"

    def __init__(self, index_dir: Path, vectors: dict[str, Any] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.vectors = vectors  # the storage policy a new index is built with

    @property
    def location(self) -> str:
        return str(Path(self.index_dir).absolute())  # messages name it whatever the working directory

    def exists(self) -> bool:
        return exists(self.index_dir)

    def read_manifest(self) -> Manifest:
        return read_manifest(live_generation(self.index_dir))

    def open(self) -> FaissStore:
        return FaissStore.open(self.index_dir)

    def writer(self, manifest: Manifest, fresh: bool = False) -> FaissWriter:
        return FaissWriter(self.index_dir, manifest, fresh=fresh, vectors=self.vectors)

    def kept_policy(self, manifest: Manifest) -> str | None:
        """How an existing index stores its vectors, when that is not what the settings
        ask for a new one (it keeps its own until --rebuild); None when they agree."""
        if "vectors" not in manifest.backend or self.vectors is None:
            return None
        built, asked = vector_index.describe(manifest.backend["vectors"]), vector_index.describe(self.vectors)
        if (built["storage"], built["ann_from"]) == (asked["storage"], asked["ann_from"]):
            return None
        return f"{built['storage']}, IVF from {built['ann_from']} chunks"

    def write_lock(self) -> contextlib.AbstractContextManager[None]:
        return write_lock(self.index_dir)

    def sweep(self) -> None:
        sweep(self.index_dir)

    def bytes_on_disk(self) -> int | None:
        return bytes_on_disk(self.index_dir)
