"""The Milvus store: an index as collections in a Milvus database.

The database is a local milvus-lite file (`--milvus-uri indexes/x/milvus.db`) or a Milvus
server or cluster (`--milvus-uri http://HOST:19530`); pymilvus speaks the same protocol to
both. With prefix P (`--milvus-collection`, default "rag"):

    P_meta               the manifest (JSON in parts), a "head" row naming the live
                         generation and its collections, a "lock" row while a writer runs
    P_chunks_<gen>       one row per chunk: metadata, text, the dense vector, and `terms`
                         (its words, Porter-stemmed) that Milvus's BM25 function turns
                         into the sparse vector of the lexical search
    P_pages_<gen>        page texts (in parts of at most PAGE_PART characters), for quotes

Milvus has no transactions, so a commit works like FAISS's CURRENT flip: each row
carries the generation that wrote it; readers see rows up to the head's generation, and
of each file only its live generation (the manifest's `milvus.live`). A writer adds rows
under the next generation, writes the manifest and upserts the head row: that one write
commits. Superseded rows go one commit later (`milvus_write.tidy`), so a query begun
before a commit finishes; a reader follows each commit at its next query (`refresh`).
A killed writer leaves rows no reader sees; the next writer sweeps them. `--rebuild`
writes new collections and drops the old ones one commit later.

This module reads (MilvusStore); milvus_backend.py is the backend, milvus_write.py
writes, milvus_db.py holds the schema, meta rows and BM25 terms.

The compromise: a milvus-lite file is open in one process at a time (its own lock), so
there searches wait for an ingest to finish; a server has no such limit.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from ..manifest import FileRecord, Manifest
from ..types import Chunk, Hit, Page
from .milvus_db import LATE_FIELDS, Connection, failure, query_terms, quote, source_key, stem, where_filter

log = logging.getLogger(__name__)

_QUERY_BATCH = 1000  # ids per query
_SEARCH_LIMIT = 16384  # Milvus's top-k ceiling


def _page(value: Any) -> int | None:
    return None if int(value) < 0 else int(value)


class MilvusStore:
    """A read-only view of the committed state of a Milvus index; `refresh()` moves it to
    the latest commit (the retriever calls it before each query)."""

    def __init__(self, conn: Connection, head: dict[str, Any], manifest: Manifest) -> None:
        self._conn = conn
        self._client = conn.client
        self._adopt(head, manifest)

    def _adopt(self, head: dict[str, Any], manifest: Manifest) -> None:
        """Switch to a commit; checked in full before anything changes."""
        for name in (head["chunks"], head["pages"]):
            if not self._client.has_collection(name):
                raise IndexCorruptError(f"collection {name} is missing at {self._conn.uri}; rebuild with --rebuild")
            self._client.load_collection(name)
        fields = {f["name"]: f for f in self._client.describe_collection(head["chunks"])["fields"]}
        late = [f for f in LATE_FIELDS if f in fields]
        dim = manifest.embedder.dim
        if int(fields["vector"]["params"]["dim"]) != dim:
            raise IndexCorruptError(f"collection {head['chunks']} holds vectors of another dimension "
                                    f"than the manifest's {dim}")
        if getattr(self, "manifest", None) and self.manifest.embedder != manifest.embedder:
            raise IndexMismatchError(
                f"the index at {self.location} was rebuilt with embedder {manifest.embedder.name} while "
                "this process had it open; open it again"
            )
        self.manifest = manifest
        self.chunks_collection, self.pages_collection = head["chunks"], head["pages"]
        self.late = late  # location and ocr, where the collection has them
        self.generation = int(head["generation"])
        self._live: dict[str, int] = {k: int(v) for k, v in manifest.backend.get("milvus", {}).get("live", {}).items()}

    @classmethod
    def open(cls, uri: str, prefix: str, token: str | None) -> "MilvusStore":
        conn = Connection(uri, prefix, token)
        try:
            for attempt in range(3):
                head = conn.head()
                if head is None:
                    raise IndexNotFoundError(
                        f"no index in Milvus at {uri} (collections {prefix}_*): build one with "
                        "`rag ingest <folder> --store milvus`"
                    )
                try:
                    return cls(conn, head, conn.manifest(head))
                except IndexCorruptError:
                    if attempt < 2 and conn.head() != head:  # a commit moved on while we read
                        continue
                    raise
            raise AssertionError("unreachable")
        except BaseException:
            conn.close()
            raise

    def refresh(self) -> None:
        for attempt in range(3):
            head = self._conn.head()
            if head is None or int(head["generation"]) == self.generation:
                return
            try:
                self._adopt(head, self._conn.manifest(head))
                return
            except IndexCorruptError:
                if attempt == 2 or self._conn.head() == head:  # not a commit moving on while we read
                    raise

    @property
    def location(self) -> str:
        return f"{self._conn.uri} ({self._conn.prefix})"

    @property
    def dim(self) -> int:
        return self.manifest.embedder.dim

    @property
    def size(self) -> int:
        return self.manifest.chunks

    def files(self) -> dict[str, FileRecord]:
        return dict(self.manifest.files)

    def _alive(self, row: dict[str, Any]) -> bool:
        entity = row.get("entity", row)
        return self._live.get(entity["source"]) == int(entity["gen"])

    def _search(self, data: list[Any], field: str, k: int, where: Any, params: dict[str, Any]) -> list[list[tuple[int, float]]]:
        extra = where_filter(where)
        expr = f"gen <= {self.generation}" + (f" and {extra}" if extra else "")
        limit = min(_SEARCH_LIMIT, 2 * k + 10)  # a margin for superseded rows not yet deleted
        while True:
            search_params = dict(params)
            if field == "vector" and self._conn.lite:  # HNSW explores at least the rows asked for
                search_params["params"] = {"ef": max(64, limit)}
            try:
                result = self._client.search(self.chunks_collection, data, anns_field=field, limit=limit, filter=expr,
                                             output_fields=["source", "gen"], search_params=search_params)
            except Exception as exc:
                raise failure(exc, f"search of {self.chunks_collection}") from None
            # BM25 "distances" come back negative from milvus-lite and positive from a
            # server: either way the list is best first, and the magnitude is the score.
            out = [[(int(h["id"]), abs(float(h["distance"])) if field == "sparse" else float(h["distance"]))
                    for h in hits if self._alive(h)] for hits in result]
            short = any(len(o) < k and len(r) == limit for o, r in zip(out, result))
            if not short or limit >= _SEARCH_LIMIT:
                return [o[:k] for o in out]
            limit = min(_SEARCH_LIMIT, limit * 4)

    def search(self, query_vectors: np.ndarray, k: int, where: Any = None) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, inner product) per query row, filtered in Milvus by `where`."""
        if self.size == 0:
            return [[] for _ in range(len(query_vectors))]
        data = [np.asarray(v, dtype=np.float32).tolist() for v in query_vectors]
        return self._search(data, "vector", k, where, {"metric_type": "IP"})

    def lexical_search(self, query: str, k: int, where: Any = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for a question's stemmed content words."""
        words = query_terms(query)
        if not words or self.size == 0:
            return []
        return self._search([" ".join(words)], "sparse", k, where, {"metric_type": "BM25"})[0]

    def idf(self, words: Iterable[str]) -> dict[str, float]:
        """log((N + 1) / (df + 0.5)) per word, df counted by Milvus's text match on its stem."""
        out: dict[str, float] = {}
        for w in words:
            stems = query_terms(w) or [stem(w.lower())]
            expr = f"gen <= {self.generation} and TEXT_MATCH(terms, {quote(stems[0])})"
            try:
                df = self._conn.count(self.chunks_collection, expr)
            except Exception as exc:
                raise failure(exc, f"text match in {self.chunks_collection}") from None
            # Rows a commit superseded stay one more commit; never count more than N.
            out[w] = math.log((self.size + 1) / (min(df, self.size) + 0.5))
        return out

    def _by_id(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        ids = [int(i) for i in ids]
        for a in range(0, len(ids), _QUERY_BATCH):
            try:
                rows = self._client.query(self.chunks_collection, ids=ids[a:a + _QUERY_BATCH], output_fields=fields)
            except Exception as exc:
                raise failure(exc, f"query of {self.chunks_collection}") from None
            out.update((int(r["id"]), r) for r in rows)
        return out

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        rows = self._by_id(ids, ["vector"])
        try:
            return np.asarray([rows[int(i)]["vector"] for i in ids], dtype=np.float32)
        except KeyError as exc:
            raise IndexCorruptError(f"chunk {exc} is missing from {self.chunks_collection}; rebuild with --rebuild") from None

    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
        rows = self._by_id([cid for cid, _ in ranked], ["source", "page", "heading", "start", "end", "text", *self.late])
        out = []
        for rank, (cid, score) in enumerate(ranked, start=1):
            r = rows.get(cid)
            if r is None:
                raise IndexCorruptError(f"chunk {cid} is missing from {self.chunks_collection}; rebuild with --rebuild")
            out.append(Hit(rank, score, cid, r["source"], _page(r["page"]), r["heading"], int(r["start"]),
                           int(r["end"]), r["text"], location=r.get("location", ""), ocr=bool(r.get("ocr", False))))
        return out

    def page_text(self, source: str, page: int | None) -> str | None:
        gen = self._live.get(source)
        if gen is None:
            return None
        expr = f'skey == "{source_key(source)}" and page == {-1 if page is None else int(page)} and gen == {gen}'
        rows = list(self._client.query(self.pages_collection, filter=expr, output_fields=["offset", "text"]))
        return "".join(r["text"] for r in sorted(rows, key=lambda r: int(r["offset"]))) if rows else None

    def _iterate(self, collection: str, fields: list[str], batch: int) -> Iterator[list[dict[str, Any]]]:
        it = self._client.query_iterator(collection, batch_size=batch, filter=f"gen <= {self.generation}",
                                         output_fields=fields)
        try:
            while True:
                rows = it.next()
                if not rows:
                    return
                yield [dict(r) for r in rows if self._alive(r)]
        finally:
            it.close()

    def export(self, batch: int = 4096) -> Iterator[tuple[list[int], list[Chunk], np.ndarray]]:
        """Every live chunk with its id and stored vector, a batch at a time."""
        fields = ["id", "source", "page", "heading", "start", "end", "text", "tokens", "gen", "vector", *self.late]
        for rows in self._iterate(self.chunks_collection, fields, batch):
            if not rows:
                continue
            rows.sort(key=lambda r: int(r["id"]))
            chunks = [Chunk(source=r["source"], page=_page(r["page"]), heading=r["heading"], start=int(r["start"]),
                            end=int(r["end"]), text=r["text"], tokens=int(r["tokens"]),
                            location=r.get("location", ""), ocr=bool(r.get("ocr", False))) for r in rows]
            yield [int(r["id"]) for r in rows], chunks, np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def pages(self) -> Iterator[Page]:
        """Every live page part (a long page comes back in parts, each with its offset)."""
        for rows in self._iterate(self.pages_collection, ["source", "page", "offset", "gen", "text"], 2048):
            for r in rows:
                yield Page(source=r["source"], page=_page(r["page"]), text=r["text"], kind="text",
                           offset=int(r["offset"]))

    def close(self) -> None:
        self._conn.close()
