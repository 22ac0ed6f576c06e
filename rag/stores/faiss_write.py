"""Writing a FAISS index: the next generation is built beside the live one and made live
by one atomic rename of CURRENT (see rag/stores/faiss.py for the layout)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..manifest import Draft, FileRecord, Manifest
from ..types import Chunk, Page
from . import faiss_files as files
from . import vector_index
from .faiss_files import CHUNKS_DB, CURRENT, MANIFEST, VECTORS, _SCHEMA, exists, live_generation
from .vector_index import load_faiss as _faiss


class FaissWriter:
    """Builds the next generation of an index; nothing is visible until `commit()`.

    A manifest without a "vectors" entry (a new index) gets one from `vectors`, the
    storage policy of the settings: the FAISS part of the manifest is this store's to fill."""

    def __init__(self, index_dir: Path, manifest: Manifest, fresh: bool = False,
                 vectors: dict[str, Any] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        live = None if fresh or not exists(self.index_dir) else live_generation(self.index_dir)
        number = int(live.name.split("-")[1]) + 1 if live else files._next_free_number(self.index_dir)
        self.gen_dir = self.index_dir / f"gen-{number:06d}"
        if self.gen_dir.exists():  # debris of a run that died before its commit
            shutil.rmtree(self.gen_dir)
        self.gen_dir.mkdir()
        self.draft = Draft(manifest)
        self.draft.backend["generation"] = self.generation = number
        self.draft.backend.setdefault("vectors", vector_index.describe(vectors))
        self.manifest: Manifest | None = None  # the committed manifest, once commit() ran
        if live:
            files._copy_db(live / CHUNKS_DB, self.gen_dir / CHUNKS_DB)
            self._vectors = files._read_vectors(live / VECTORS)
        else:
            storage = vector_index.describe(self.draft.backend["vectors"])["storage"]
            self._vectors = vector_index.new_flat(manifest.embedder.dim, storage)
        self._db = sqlite3.connect(self.gen_dir / CHUNKS_DB)
        self._db.executescript(_SCHEMA)
        have = files.chunk_columns(self._db)
        for name, spec in files.LATE_COLUMNS.items():
            if name not in have:  # an index written before the column existed
                self._db.execute(f"ALTER TABLE chunks ADD COLUMN {name} {spec}")
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
            'INSERT INTO chunks (id, source, page, heading, start, "end", text, tokens, location, ocr) '
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(int(i), c.source, c.page, c.heading, c.start, c.end, c.text, c.tokens, c.location, int(c.ocr))
             for i, c in zip(ids, chunks)],
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

    def move_file(self, old: str, new: str, record: FileRecord) -> None:
        """A file moved on disk: its rows take the new name; ids, vectors and the lexical
        index (keyed by chunk id) stay as they are."""
        for table in ("chunks", "pages"):
            self._db.execute(f"UPDATE {table} SET source = ? WHERE source = ?", (new, old))
        self.draft.files.pop(old, None)
        self.draft.files[new] = record

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
        files._write_atomic(self.gen_dir / MANIFEST, json.dumps(manifest.to_json(), indent=2, sort_keys=True))
        for name in (VECTORS, CHUNKS_DB):
            files._fsync(self.gen_dir / name)
        files._fsync(self.gen_dir)
        files._write_atomic(self.index_dir / CURRENT, self.gen_dir.name + "\n")
        self._committed = True
        self.manifest = manifest
        files._fsync(self.index_dir)
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
        files.sweep(self.index_dir)
