"""Writing a Milvus index (see rag/stores/milvus.py for the layout): the writer that adds
a generation's rows and commits it with one head upsert, and `tidy`, which deletes what
no reader needs any more once a commit is in."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Sequence

import numpy as np

from ..errors import IndexCorruptError, IndexLockedError, RagError
from ..types import Chunk, Page, file_type
from . import vector_index
from .milvus_db import LATE_FIELDS, LOCATION_MAX, TEXT_MAX, Connection, failure, manifest_key, source_key, terms
from ..manifest import Draft, FileRecord, Manifest

log = logging.getLogger(__name__)

PAGE_PART = 8000  # characters per page row: at most 32,000 bytes of UTF-8, under VARCHAR's 65,535
_MANIFEST_PART = 8000
_INSERT_BATCH = 1000


class MilvusWriter:
    """Adds the next generation's rows; nothing is visible to readers until `commit()`."""

    def __init__(self, conn: Connection, manifest: Manifest, fresh: bool = False,
                 lease: str | None = None, vectors: dict[str, Any] | None = None) -> None:
        self._conn = conn
        self.lease = lease  # the write lock's token, renewed while rows go in
        self._renewed = time.monotonic()
        self._client = conn.client
        conn.ensure_meta()
        try:
            head = conn.head()
        except IndexCorruptError:
            if not fresh:
                raise
            head = None  # a rebuild replaces a damaged index: number past every collection
        numbers = [int(name.rsplit("_", 1)[1]) for name in conn.ours()]
        self.generation = max([int(head["generation"]) if head else 0, *numbers]) + 1
        self.old_head = head
        self.fresh = fresh or head is None
        if self.fresh:
            self.chunks_collection = f"{conn.prefix}_chunks_{self.generation:06d}"
            self.pages_collection = f"{conn.prefix}_pages_{self.generation:06d}"
            conn.create_data(self.chunks_collection, self.pages_collection, manifest.embedder.dim)
            self.late = LATE_FIELDS
        else:
            self.chunks_collection, self.pages_collection = head["chunks"], head["pages"]
            for name in (self.chunks_collection, self.pages_collection):
                self._client.load_collection(name)
                # A writer killed before its commit left rows under this number; no reader saw them.
                self._client.delete(name, filter=f"gen >= {self.generation}")
            self.late = conn.late_fields(self.chunks_collection)
        self.draft = Draft(manifest)
        self.manifest: Manifest | None = None  # the committed manifest, once commit() ran
        self.draft.backend.update(generation=self.generation, store="milvus")
        # Kept for a migration back to FAISS (rag migrate): the storage policy it was built with.
        self.draft.backend.setdefault("vectors", vector_index.describe(vectors))
        section = self.draft.backend.setdefault("milvus", {})
        self._before: dict[str, int] = {} if self.fresh else {k: int(v) for k, v in section.get("live", {}).items()}
        self._touched_before = sorted(section.get("touched", {})) if not self.fresh else []
        self._live = dict(self._before)
        self._touched: set[str] = set()
        self._committed = False

    def _insert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        for a in range(0, len(rows), _INSERT_BATCH):
            try:
                self._client.insert(collection, rows[a:a + _INSERT_BATCH])
            except Exception as exc:
                raise failure(exc, f"insert into {collection}") from None

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            return
        ids_ = self.draft.new_ids(len(chunks), ids)
        self._insert(self.chunks_collection, chunk_rows(chunks, vectors, ids_, self.generation, self.late))
        self.keep_lease()

    def keep_lease(self) -> None:
        """Renew the write lock's lease when it is due (rows going in keep it alive)."""
        if self.lease is not None and time.monotonic() - self._renewed > 600:
            self._conn.renew_lease(self.lease)
            self._renewed = time.monotonic()

    def add_pages(self, pages: Sequence[Page]) -> None:
        self._insert(self.pages_collection, page_rows(pages, self.generation))

    def finish_file(self, source: str, record: FileRecord) -> None:
        self.draft.files[source] = record
        self._live[source] = self.generation
        self._touched.add(source)

    def _delete_new(self, source: str) -> None:
        expr = f'skey == "{source_key(source)}" and gen == {self.generation}'
        for name in (self.chunks_collection, self.pages_collection):
            self._client.delete(name, filter=expr)

    def discard_file(self, source: str) -> None:
        """A file failed part-way: drop what this writer added for it; its old version stays."""
        self._delete_new(source)

    def remove_source(self, source: str) -> int:
        record = self.draft.files.pop(source, None)
        self._live.pop(source, None)
        self._touched.add(source)
        self._delete_new(source)
        return record.chunks if record else 0

    def move_file(self, old: str, new: str, record: FileRecord) -> None:
        """A file moved on disk: its live rows are written again under the new name (new
        ids, the same vectors, this generation); the old rows go as a removed file's do."""
        gen = self._live.get(old)
        if gen is not None:
            live = f'skey == "{source_key(old)}" and gen == {gen}'
            chunk_fields = ["source", "page", "heading", "start", "end", "tokens", "text", "terms", "vector",
                            *self.late]
            rows = self._rows(self.chunks_collection, live, chunk_fields)
            for row, i in zip(rows, self.draft.new_ids(len(rows))):
                row.update(id=int(i), ext=file_type(new)[:60])
            self._insert(self.chunks_collection, self._renamed(rows, new))
            pages = self._rows(self.pages_collection, live, ["source", "page", "offset", "text", "v"])
            for page in pages:
                page.pop("id", None)  # the pages collection numbers its rows itself
            self._insert(self.pages_collection, self._renamed(pages, new))
        self.remove_source(old)
        self.finish_file(new, record)

    def _rows(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        it = self._client.query_iterator(collection, batch_size=1000, filter=expr, output_fields=fields)
        out: list[dict[str, Any]] = []
        try:
            while rows := it.next():
                out.extend(dict(r) for r in rows)
        finally:
            it.close()
        return out

    def _renamed(self, rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        for row in rows:
            row.pop("sparse", None)  # BM25's output: Milvus computes it again from `terms`
            if "vector" in row:
                row["vector"] = [float(x) for x in row["vector"]]
            if "v" in row:
                row["v"] = [float(x) for x in row["v"]]
            row.update(source=source, skey=source_key(source), gen=self.generation)
        return rows

    def commit(self) -> Manifest:
        """Make this generation the live one: check and flush the rows, write the
        manifest, then one upsert of the head."""
        files = self.draft.files
        section = self.draft.backend["milvus"]
        section["live"] = dict(sorted(self._live.items()))
        # Only files whose earlier version is still stored have anything to delete later.
        section["touched"] = {s: self._before[s] for s in sorted(self._touched) if self._before.get(s) is not None}
        section["touched_before"] = self._touched_before
        section["previous"] = ([self.old_head["chunks"], self.old_head["pages"]]
                               if self.old_head and self.fresh else [])
        for name in (self.chunks_collection, self.pages_collection):
            self._client.flush(name)
        mine = sum(files[s].chunks for s, g in self._live.items() if g == self.generation)
        stored = self._conn.count(self.chunks_collection, f"gen == {self.generation}")
        if stored != mine:
            raise IndexCorruptError(f"Milvus at {self._conn.uri} holds {stored} new chunk rows in "
                                    f"{self.chunks_collection}, {mine} were written; the index is left as it was")
        manifest = self.draft.build(sum(r.chunks for r in files.values()))
        text = json.dumps(manifest.to_json(), sort_keys=True)
        parts = [text[a:a + _MANIFEST_PART] for a in range(0, len(text), _MANIFEST_PART)] or [""]
        self._conn.put({manifest_key(self.generation, i): p for i, p in enumerate(parts)})
        head = {"generation": self.generation, "parts": len(parts), "chunks": self.chunks_collection,
                "pages": self.pages_collection}
        if self.lease is not None and self._conn.lease_token() != self.lease:
            raise IndexLockedError(f"this ingest lost the write lock of {self._conn.uri}; nothing was committed")
        # From here abort() keeps its hands off: if the head write fails, the rows are
        # invisible debris for the next sweep; if it succeeded, they are the live index.
        self._committed = True
        self._conn.put({"head": json.dumps(head)})  # the commit
        self.manifest = manifest
        tidy(self._conn, head, manifest)
        self._conn.close()
        return manifest

    def abort(self) -> None:
        """Drop this writer's rows, unless its commit already went through (then an
        interrupted cleanup is left to the next writer's sweep)."""
        try:
            if self._committed:
                return
            if self.fresh:
                for name in (self.chunks_collection, self.pages_collection):
                    if self._client.has_collection(name):
                        self._client.drop_collection(name)
            else:
                for name in (self.chunks_collection, self.pages_collection):
                    self._client.delete(name, filter=f"gen >= {self.generation}")
        except Exception as exc:  # the next writer sweeps what is left
            log.warning("could not clear an aborted write in Milvus at %s: %s", self._conn.uri, exc)
        finally:
            self._conn.close()


def chunk_rows(chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int], generation: int,
               late: Sequence[str]) -> list[dict[str, Any]]:
    """The chunks collection's rows for these chunks (also built by Ray workers that write
    straight to a Milvus server: rag/engines/ray_milvus.py)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = []
    for i, c, v in zip(ids, chunks, vectors):
        if len(c.text.encode("utf-8", "surrogatepass")) > TEXT_MAX:
            raise RagError(f"{c.source}: a chunk of {len(c.text)} characters is over Milvus's text limit; "
                           "use smaller --chunk-tokens")
        rows.append({
            "id": int(i), "source": c.source, "skey": source_key(c.source), "ext": file_type(c.source)[:60],
            "page": -1 if c.page is None else int(c.page), "heading": c.heading[:2000], "start": int(c.start),
            "end": int(c.end), "tokens": int(c.tokens), "gen": generation, "text": c.text,
            "terms": terms(f"{c.heading}\n{c.text}")[:16000], "vector": v.tolist(),
            **{name: value for name, value in (("location", c.location[:LOCATION_MAX]), ("ocr", c.ocr))
               if name in late},
        })
    return rows


def page_rows(pages: Sequence[Page], generation: int) -> list[dict[str, Any]]:
    """The pages collection's rows for these pages, long ones in parts of PAGE_PART characters."""
    rows = []
    for p in pages:
        for a in range(0, max(len(p.text), 1), PAGE_PART):
            rows.append({"source": p.source, "skey": source_key(p.source), "page": -1 if p.page is None else int(p.page),
                         "offset": int(p.offset) + a, "gen": generation, "text": p.text[a:a + PAGE_PART],
                         "v": [0.0, 0.0]})
    return rows


def _superseded(sources: dict[str, tuple[int, ...]]) -> list[str]:
    """Delete filters for the rows of these files outside the generations to keep, one
    per set of kept generations and at most 200 files each (one scan per filter)."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for source, keep in sources.items():
        groups.setdefault(tuple(sorted(set(keep))), []).append(source_key(source))
    out = []
    for keep, keys in groups.items():
        for a in range(0, len(keys), 200):
            listed = ", ".join(f'"{k}"' for k in keys[a:a + 200])
            out.append(f"skey in [{listed}]" + "".join(f" and gen != {g}" for g in keep))
    return out


def tidy(conn: Connection, head: dict[str, Any], manifest: Manifest) -> None:
    """Delete what no reader needs any more: the versions the previous commit superseded,
    collections and manifests older than the previous commit. The versions this commit
    superseded stay one commit longer, for readers that were mid-query. Safe to repeat:
    a writer runs it after its commit, and the next ingest's sweep again if that writer
    was killed before it finished (the "clean" row says which commit was tidied)."""
    client = conn.client
    g = int(head["generation"])
    section = manifest.backend.get("milvus", {})
    live = section.get("live", {})
    keep = {head["chunks"], head["pages"], *section.get("previous", [])}
    for name in conn.ours():
        if name not in keep:
            client.drop_collection(name)
    touched = section.get("touched", {})
    plan = {s: tuple(x for x in (live.get(s), before) if x is not None) for s, before in touched.items()}
    for source in section.get("touched_before", []):
        plan.setdefault(source, tuple(x for x in (live.get(source),) if x is not None))
    for name in (head["chunks"], head["pages"]):
        client.load_collection(name)
        for expr in _superseded(plan):
            client.delete(name, filter=expr)
        client.flush(name)
    conn.drop_keys([k for k in conn.meta_keys("manifest-")
                    if not k.startswith((f"manifest-{g:06d}-", f"manifest-{g - 1:06d}-"))])
    conn.put({"clean": str(g)})  # flushes the meta collection
