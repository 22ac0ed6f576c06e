"""Writing a FAISS index: the next generation is built beside the live one and made live
by one atomic rename of CURRENT (see rag/stores/faiss.py for the layout). The writer
fills one delta segment; commit() links the live generation's files into the new one and
either keeps the delta, merges it with its neighbours or compacts everything into a new
base (rag/stores/faiss_segments.py says when and why)."""

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
from . import faiss_segments as segs
from . import vector_index
from .faiss_files import CHUNKS_DB, CURRENT, MANIFEST, VECTORS, _SCHEMA, exists, live_generation, read_manifest
from .faiss_segments import Segment
from .vector_index import load_faiss as _faiss


class FaissWriter:
    """Builds the next generation of an index; nothing is visible until `commit()`.

    A manifest without a "vectors" entry (a new index) gets one from `vectors`, the
    storage policy of the settings: the FAISS part of the manifest is this store's to fill.
    What the writer adds goes into its own delta segment; what it removes is recorded as
    dead sources, which hide those files' rows in the older segments."""

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
        self.live_dir = live
        self._live_manifest = None
        if live:  # the caller's manifest is usually the live one: no second read of a large file
            same = manifest.backend.get("generation") == number - 1
            self._live_manifest = manifest if same else read_manifest(live)
        self._live_segs = segs.deltas(self._live_manifest.backend) if self._live_manifest else []
        self._storage = vector_index.describe(self.draft.backend["vectors"])["storage"]
        self.name = f"seg-{number:06d}"
        self._vectors = vector_index.new_flat(manifest.embedder.dim, self._storage)
        self._db = segs.new_db(segs.db_path(self.gen_dir, self.name))
        self._dead: set[str] = set()
        self.start_id = self.draft.next_id

    def remove_source(self, source: str) -> int:
        """Drop every chunk and page of a file; returns how many chunks went."""
        return self._delete(source, "")

    def _delete(self, source: str, which: str) -> int:
        """Delete a file's chunks and pages: all (""), from before this writer ("old")
        or added by it ("new"). Chunk ids only grow, so `start_id` splits old from new;
        the older segments' rows of a file are hidden by marking its source dead."""
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
        older = 0
        if which != "new":
            self.draft.files.pop(source, None)
            if self.live_dir is not None and source not in self._dead:
                was = self._live_manifest.files.get(source)
                older = was.chunks if was is not None else 0
                self._dead.add(source)
                self._db.execute("INSERT OR IGNORE INTO dead (source) VALUES (?)", (source,))
        return len(ids) + older

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        """Store chunks (of any files) with their vectors; they count once finish_file runs.
        `ids` keeps the ids chunks had in another index (rag migrate); by default they get new ones."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            return
        ids = self.draft.new_ids(len(chunks), ids)
        self._insert([(int(i), c.source, c.page, c.heading, c.start, c.end, c.text, c.tokens, c.location, int(c.ocr))
                      for i, c in zip(ids, chunks)], vectors, ids)

    def _insert(self, rows: Sequence[tuple[Any, ...]], vectors: np.ndarray, ids: np.ndarray) -> None:
        self._vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))
        self._db.executemany(
            'INSERT INTO chunks (id, source, page, heading, start, "end", text, tokens, location, ocr) '
            "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        self._db.executemany("INSERT INTO chunks_fts (rowid, heading, text) VALUES (?,?,?)",
                             [(r[0], r[3], r[6]) for r in rows])

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
        """A file moved on disk: its rows take the new name and keep their ids and vectors
        (the live generation's rows are copied into the delta under the new name)."""
        for table in ("chunks", "pages"):
            self._db.execute(f"UPDATE {table} SET source = ? WHERE source = ?", (new, old))
        if self.live_dir is not None and old not in self._dead:
            self._copy_live(old, new)
            self._dead.add(old)
            self._db.execute("INSERT OR IGNORE INTO dead (source) VALUES (?)", (old,))
        self.draft.files.pop(old, None)
        self.draft.files[new] = record

    def _copy_live(self, old: str, new: str) -> None:
        assert self.live_dir is not None
        db = segs.connect(self.live_dir, self._live_segs)
        try:
            late = segs.late_select(db, "temp" if self._live_segs else "main")
            rows = [(r[0], new, *r[2:]) for r in db.execute(
                f'SELECT id, source, page, heading, start, "end", text, tokens, {late} FROM chunks '
                "WHERE source = ? ORDER BY id", (old,))]
            pages = [(new, *r[1:]) for r in db.execute(
                'SELECT source, page, "offset", text, generation FROM pages WHERE source = ?', (old,))]
            if rows:
                live = (segs.load_vectors(self.live_dir, self._live_segs, db) if self._live_segs
                        else files._read_vectors(self.live_dir / VECTORS))
                ids = np.array([r[0] for r in rows], np.int64)
                self._insert(rows, np.vstack([live.reconstruct(int(i)) for i in ids]), ids)
            self._db.executemany('INSERT INTO pages (source, page, "offset", text, generation) VALUES (?,?,?,?,?)', pages)
        finally:
            db.close()

    def add_file(self, record: FileRecord, source: str, pages: Sequence[Page], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store one whole file's pages, chunks and vectors, replacing any earlier version."""
        self.add_chunks(chunks, vectors)
        self.add_pages(pages)
        self.finish_file(source, record)

    def commit(self) -> Manifest:
        """Write the generation to disk and make it the live one, atomically; returns
        the manifest now live."""
        self._db.commit()
        rows = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        delta = Segment(self.name, int(rows), len(self._dead))
        count = (self._live_manifest.chunks if self._live_manifest else 0) - self._killed() + delta.rows
        base_rows = int(self._live_manifest.backend.get("base_rows", self._live_manifest.chunks)) if self._live_manifest else 0
        chain = [*self._live_segs, delta]
        spec = self.draft.backend["vectors"]
        if (self.live_dir is None or base_rows < segs.COMPACT_BELOW or vector_index.refit_due(spec, count)
                or sum(s.size for s in chain) > segs.DELTA_SHARE * base_rows):
            self._compact(chain)
            self.draft.backend["segments"], self.draft.backend["base_rows"] = [], int(count)
        else:
            self._db.close()
            segs.write_vectors(self._vectors, segs.vectors_path(self.gen_dir, self.name))
            kept = [CHUNKS_DB, VECTORS] + [f"{s.name}.{ext}" for s in self._live_segs for ext in ("sqlite", "faiss")]
            segs.link(self.live_dir, self.gen_dir, kept)
            chain = self._merge(chain)
            self.draft.backend["segments"], self.draft.backend["base_rows"] = [s.to_json() for s in chain], base_rows
        manifest = self.draft.build(int(count))
        # Indented for reading while small; the C encoder (no indent) once it lists many files.
        small = len(manifest.files) <= 1000
        files._write_atomic(self.gen_dir / MANIFEST, json.dumps(manifest.to_json(), indent=2 if small else None,
                                                                sort_keys=small))
        for path in self.gen_dir.iterdir():
            if path.stat().st_nlink == 1:  # a linked file is durable since its own commit
                files._fsync(path)
        files._fsync(self.gen_dir)
        files._write_atomic(self.index_dir / CURRENT, self.gen_dir.name + "\n")
        self._committed = True
        self.manifest = manifest
        files._fsync(self.index_dir)
        self._sweep()
        return manifest

    def _killed(self) -> int:
        """How many live rows the sources marked dead by this writer hid."""
        if self.live_dir is None or not self._dead:
            return 0
        names = [CHUNKS_DB] + [f"{s.name}.sqlite" for s in self._live_segs]
        dead_in = [set()] + [_dead_sources(self.live_dir / n) for n in names[1:]]
        total = 0
        for i, name in enumerate(names):
            hidden_later = set().union(*dead_in[i + 1:])
            db = sqlite3.connect(f"file:{self.live_dir / name}?mode=ro", uri=True)
            try:
                for source in self._dead - hidden_later:
                    total += db.execute("SELECT count(*) FROM chunks WHERE source = ?", (source,)).fetchone()[0]
            finally:
                db.close()
        return total

    def _compact(self, chain: list[Segment]) -> None:
        """Fold every segment and this writer's delta into a new base (and a vector index
        fitted to the new size): the cost of a full copy, paid only when the policy says."""
        delta_db = segs.db_path(self.gen_dir, self.name)
        if self.live_dir is None:
            self._db.execute("DELETE FROM dead")
            self._db.commit()
            self._db.close()
            delta_db.rename(self.gen_dir / CHUNKS_DB)
            merged = self._vectors
        else:
            self._db.close()
            segs.write_vectors(self._vectors, segs.vectors_path(self.gen_dir, self.name))
            db = segs.copy_db(self.live_dir / CHUNKS_DB, self.gen_dir / CHUNKS_DB)
            merged = files._read_vectors(self.live_dir / VECTORS)
            pairs = [(segs.db_path(self.live_dir, s.name), segs.vectors_path(self.live_dir, s.name)) for s in chain[:-1]]
            pairs.append((delta_db, segs.vectors_path(self.gen_dir, self.name)))
            segs.fold(db, merged, pairs)
            db.execute("DELETE FROM dead")
            db.commit()
            db.close()
            delta_db.unlink()
            segs.vectors_path(self.gen_dir, self.name).unlink()
        # The index type follows the size (flat, or IVF past ann_from): rag/stores/vector_index.py.
        merged, self.draft.backend["vectors"] = vector_index.fit(merged, self.draft.backend["vectors"])
        _faiss().write_index(merged, str(self.gen_dir / VECTORS))

    def _merge(self, chain: list[Segment]) -> list[Segment]:
        """Merge the newest deltas while the one before is at most twice the last (or
        there are too many): a binary counter, so a row is rewritten O(log) times."""
        step = 0
        while len(chain) >= 2 and (chain[-2].size <= 2 * chain[-1].size or len(chain) > segs.MAX_DELTAS):
            older, newer = chain[-2], chain[-1]
            step += 1
            name = f"{self.name}-{step}"
            db = segs.copy_db(segs.db_path(self.gen_dir, older.name), segs.db_path(self.gen_dir, name))
            vectors = files._read_vectors(segs.vectors_path(self.gen_dir, older.name))
            segs.fold(db, vectors, [(segs.db_path(self.gen_dir, newer.name), segs.vectors_path(self.gen_dir, newer.name))])
            rows = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            dead = db.execute("SELECT count(*) FROM dead").fetchone()[0]
            db.close()
            segs.write_vectors(vectors, segs.vectors_path(self.gen_dir, name))
            for seg in (older, newer):
                segs.db_path(self.gen_dir, seg.name).unlink()
                segs.vectors_path(self.gen_dir, seg.name).unlink()
            chain = [*chain[:-2], Segment(name, int(rows), int(dead))]
        return chain

    def abort(self) -> None:
        if getattr(self, "_committed", False):
            return  # the flip went through: this generation is the live one now
        try:
            self._db.close()
        finally:
            shutil.rmtree(self.gen_dir, ignore_errors=True)

    def _sweep(self) -> None:
        files.sweep(self.index_dir)


def _dead_sources(path: Path) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT source FROM dead")}
    finally:
        db.close()
