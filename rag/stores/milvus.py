"""The Milvus store: an index as three collections in a Milvus database.

The database is a local milvus-lite file (`--milvus-uri indexes/x/milvus.db`) or a Milvus
server or cluster (`--milvus-uri http://HOST:19530`); pymilvus speaks the same protocol to
both. With prefix P (`--milvus-collection`, default "rag"):

    P_meta               the manifest (JSON in parts) and a "head" row naming the live
                         generation and its collections; a "lock" row while a writer runs
    P_chunks_<gen>       one row per chunk: metadata, text, the dense vector, and `terms`
                         (the chunk's words, Porter-stemmed) that Milvus's BM25 function
                         turns into the sparse vector of the lexical search
    P_pages_<gen>        page texts (in parts of at most PAGE_PART characters), for quotes

Milvus has no transactions, so a commit works like the FAISS store's CURRENT flip: every
row carries the generation that wrote it; readers see only rows of generations up to the
head's, and of each file only the generation the manifest lists as its live version
(`manifest["milvus"]["live"]`). A writer adds rows under the next generation, then
rewrites the manifest and upserts the head row: that single-row write is the commit.
Superseded rows are deleted after it, and a writer killed at any point leaves rows that
readers ignore and the next writer sweeps. `--rebuild` writes new collections and drops
the old ones after the flip.

Stemming is ours, not Milvus's: milvus-lite's analyzers do not stem, and doing it on the
client gives the same BM25 terms on lite and on a server (the FTS5 side stems with
Porter too). The compromise: a milvus-lite file is open in one process at a time (its
own lock), so searches wait for an ingest to finish there; a server has no such limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import unicodedata
import uuid
from functools import lru_cache
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import (
    ConfigError, IndexCorruptError, IndexLockedError, IndexNotFoundError, MissingDependencyError, RagError,
)
from ..lexical import _WORD, content_words
from ..types import Chunk, Hit, Page
from .records import FileRecord, check_manifest, new_ids

log = logging.getLogger(__name__)

PAGE_PART = 8000  # characters per page row: at most 32,000 bytes of UTF-8, under VARCHAR's 65,535
_MANIFEST_PART = 8000
_TEXT_MAX = 65535
_INDEX = "AUTOINDEX"  # Milvus picks the vector index (HNSW on milvus-lite)
_INSERT_BATCH = 1000
_LEASE_SECONDS = 6 * 3600  # how long a writer on another machine that died keeps the lock
_SEARCH_LIMIT = 16384  # Milvus's top-k ceiling


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise MissingDependencyError(
            "the Milvus store needs pymilvus and milvus-lite: pip install 'rag[milvus]'"
        ) from None
    return pymilvus


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import snowballstemmer
    except ImportError:
        raise MissingDependencyError("the Milvus store needs snowballstemmer: pip install 'rag[milvus]'") from None
    return snowballstemmer.stemmer("porter")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _fold(text: str) -> str:
    """Lowercase without diacritics, as SQLite's unicode61 tokenizer folds."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> str:
    """A text's words, folded and Porter-stemmed, space-separated: what BM25 indexes."""
    return " ".join(_stem(w) for w in _WORD.findall(_fold(text)))


def query_terms(question: str) -> list[str]:
    return list(dict.fromkeys(_stem(_fold(w)) for w in content_words(question)))


def where_filter(where: Any) -> str:
    """The part of a retriever `Where` that Milvus can filter by itself: file types, and
    source globs made only of `*` and `?`. The retriever checks every hit again."""
    if not where:
        return ""
    parts = []
    if where.types:
        kinds = set(where.types) | ({"markdown"} if "md" in where.types else set())
        parts.append("(" + " or ".join(f"source like {quote('%.' + t)}" for t in sorted(kinds)) + ")")
    globs = [g for g in where.sources if not any(c in g for c in "[]%_\\")]
    if globs and len(globs) == len(where.sources):
        alts = []
        for g in globs:
            pattern = g.replace("*", "%").replace("?", "_")
            alts.append(f"source like {quote(pattern)}")
            if "/" not in g:
                alts.append(f"source like {quote('%/' + pattern)}")
        parts.append("(" + " or ".join(alts) + ")")
    return " and ".join(parts)


def _client(uri: str, token: str | None) -> Any:
    pymilvus = _pymilvus()
    # pymilvus asks milvus-lite for a timestamp call it does not implement, then carries
    # on without it; grpc logs each refusal as an error with a traceback. Not ours to show.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    # pymilvus logs every failed call (and milvus-lite's missing timestamps) on its own
    # handler; this store turns the failures that matter into RagErrors instead.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        return pymilvus.MilvusClient(uri=uri, token=token or "")
    except Exception as exc:  # pymilvus wraps milvus-lite's own lock error
        text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}"
        if uri.endswith(".db") and ("lock" in text.lower() or "Open local milvus failed" in text):
            raise IndexLockedError(
                f"the milvus-lite file {uri} is open in another process (milvus-lite allows one process at a "
                "time); wait for it to finish, or use a Milvus server: --milvus-uri http://HOST:19530"
            ) from None
        raise RagError(f"cannot open Milvus at {uri}: {str(exc).strip()[:300]}") from None


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result]


def _error(exc: Exception, what: str) -> RagError:
    return RagError(f"Milvus {what} failed: {str(exc).strip()[:300]}")


class _Connection:
    """A client bound to one index (uri + collection prefix)."""

    def __init__(self, uri: str, prefix: str, token: str | None) -> None:
        self.uri, self.prefix = uri, prefix
        self.client = _client(uri, token)
        self.meta = f"{prefix}_meta"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # -- meta rows ---------------------------------------------------------------------
    def ensure_meta(self) -> None:
        if self.client.has_collection(self.meta):
            self.client.load_collection(self.meta)
            return
        pymilvus = _pymilvus()
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("key", pymilvus.DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("value", pymilvus.DataType.VARCHAR, max_length=_TEXT_MAX)
        schema.add_field("v", pymilvus.DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
        index = self.client.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.meta, schema=schema, index_params=index, consistency_level="Strong")

    def get(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys or not self.client.has_collection(self.meta):
            return {}
        self.client.load_collection(self.meta)
        expr = "key in [" + ",".join(quote(k) for k in keys) + "]"
        return {r["key"]: r["value"] for r in _rows(self.client.query(self.meta, filter=expr, output_fields=["key", "value"]))}

    def put(self, values: dict[str, str]) -> None:
        rows = [{"key": k, "value": v, "v": [0.0, 0.0]} for k, v in values.items()]
        self.client.upsert(self.meta, rows)
        self.client.flush(self.meta)

    def drop_keys(self, keys: Sequence[str]) -> None:
        if keys:
            self.client.delete(self.meta, filter="key in [" + ",".join(quote(k) for k in keys) + "]")

    def meta_keys(self, prefix: str) -> list[str]:
        rows = self.client.query(self.meta, filter=f"key like {quote(prefix + '%')}", output_fields=["key"])
        return [r["key"] for r in rows]

    def head(self) -> dict[str, Any] | None:
        raw = self.get(["head"]).get("head")
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise IndexCorruptError(f"the head row of {self.meta} at {self.uri} is damaged; rebuild with --rebuild") from None

    def manifest(self, head: dict[str, Any]) -> dict[str, Any]:
        g, parts = int(head["generation"]), int(head["parts"])
        keys = [f"manifest-{g:06d}-{i:04d}" for i in range(parts)]
        got = self.get(keys)
        if len(got) != parts:
            raise IndexCorruptError(f"the manifest of generation {g} in {self.meta} at {self.uri} is incomplete; "
                                    "rebuild with --rebuild")
        try:
            data = json.loads("".join(got[k] for k in keys))
        except json.JSONDecodeError as exc:
            raise IndexCorruptError(f"the manifest in {self.meta} at {self.uri} is damaged ({exc})") from None
        return check_manifest(data, f"{self.meta} at {self.uri}")

    # -- data collections --------------------------------------------------------------
    def create_data(self, chunks: str, pages: str, dim: int) -> None:
        pymilvus = _pymilvus()
        DT = pymilvus.DataType
        s = self.client.create_schema(auto_id=False)
        s.add_field("id", DT.INT64, is_primary=True)
        s.add_field("source", DT.VARCHAR, max_length=4096)
        s.add_field("page", DT.INT64)  # -1: a file without pages
        s.add_field("heading", DT.VARCHAR, max_length=8192)
        for name in ("start", "end", "tokens", "gen"):
            s.add_field(name, DT.INT64)
        s.add_field("text", DT.VARCHAR, max_length=_TEXT_MAX)
        s.add_field("terms", DT.VARCHAR, max_length=_TEXT_MAX, enable_analyzer=True, enable_match=True)
        s.add_field("sparse", DT.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DT.FLOAT_VECTOR, dim=dim)
        s.add_function(pymilvus.Function(name="bm25", function_type=pymilvus.FunctionType.BM25,
                                         input_field_names=["terms"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=_INDEX, metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(chunks, schema=s, index_params=index, consistency_level="Strong")
        p = self.client.create_schema(auto_id=True)
        p.add_field("id", DT.INT64, is_primary=True)
        p.add_field("source", DT.VARCHAR, max_length=4096)
        p.add_field("page", DT.INT64)
        p.add_field("offset", DT.INT64)
        p.add_field("gen", DT.INT64)
        p.add_field("text", DT.VARCHAR, max_length=_TEXT_MAX)
        p.add_field("v", DT.FLOAT_VECTOR, dim=2)
        index = self.client.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        self.client.create_collection(pages, schema=p, index_params=index, consistency_level="Strong")

    def ours(self) -> list[str]:
        """Every data collection of this index, live or debris."""
        return [c for c in self.client.list_collections()
                if c.startswith((f"{self.prefix}_chunks_", f"{self.prefix}_pages_"))]


def _live_filter(source: str, gen: int | None) -> str:
    return f"source == {quote(source)}" + (f" and gen != {gen}" if gen is not None else "")


class MilvusStore:
    """A read-only view of the committed generation of a Milvus index."""

    def __init__(self, conn: _Connection, head: dict[str, Any], manifest: dict[str, Any]) -> None:
        self._conn = conn
        self._client = conn.client
        self.manifest = manifest
        self.chunks_collection = head["chunks"]
        self.pages_collection = head["pages"]
        self.generation = int(head["generation"])
        self._live: dict[str, int] = {k: int(v) for k, v in manifest.get("milvus", {}).get("live", {}).items()}

    @classmethod
    def open(cls, uri: str, prefix: str, token: str | None) -> "MilvusStore":
        conn = _Connection(uri, prefix, token)
        try:
            head = conn.head()
            if head is None:
                raise IndexNotFoundError(
                    f"no index in Milvus at {uri} (collections {prefix}_*): build one with "
                    "`rag ingest <folder> --store milvus`"
                )
            manifest = conn.manifest(head)
            for name in (head["chunks"], head["pages"]):
                if not conn.client.has_collection(name):
                    raise IndexCorruptError(f"collection {name} is missing at {uri}; rebuild with --rebuild")
                conn.client.load_collection(name)
            store = cls(conn, head, manifest)
            store._check()
        except BaseException:
            conn.close()
            raise
        return store

    def _check(self) -> None:
        fields = {f["name"]: f for f in self._client.describe_collection(self.chunks_collection)["fields"]}
        dim = int(fields["vector"]["params"]["dim"])
        if dim != self.dim:
            raise IndexCorruptError(f"collection {self.chunks_collection} holds {dim}-dim vectors, the manifest says {self.dim}")

    @property
    def location(self) -> str:
        return f"{self._conn.uri} ({self._conn.prefix})"

    @property
    def dim(self) -> int:
        return int(self.manifest["embedder"]["dim"])

    @property
    def size(self) -> int:
        return int(self.manifest.get("chunks", 0))

    def files(self) -> dict[str, FileRecord]:
        return {k: FileRecord(**v) for k, v in self.manifest.get("files", {}).items()}

    def _filter(self, where: Any) -> str:
        extra = where_filter(where)
        return f"gen <= {self.generation}" + (f" and {extra}" if extra else "")

    def _alive(self, row: dict[str, Any]) -> bool:
        entity = row.get("entity", row)
        return self._live.get(entity["source"]) == int(entity["gen"])

    def _search(self, data: list[Any], field: str, k: int, where: Any, params: dict[str, Any]) -> list[list[tuple[int, float]]]:
        limit = min(_SEARCH_LIMIT, 2 * k + 10)  # a margin for superseded rows not yet deleted
        try:
            result = self._client.search(self.chunks_collection, data, anns_field=field, limit=limit,
                                         filter=self._filter(where), output_fields=["source", "gen"],
                                         search_params=params)
        except Exception as exc:
            raise _error(exc, f"search of {self.chunks_collection}") from None
        # BM25 "distances" come back negative from milvus-lite and positive from a server:
        # either way the list is best first, and the magnitude is the score.
        return [[(int(h["id"]), abs(float(h["distance"])) if field == "sparse" else float(h["distance"]))
                 for h in hits if self._alive(h)][:k] for hits in result]

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
        """log((N + 1) / (df + 0.5)) per word, df counted by Milvus's text match on the stems."""
        import math

        out: dict[str, float] = {}
        for w in words:
            stems = query_terms(w) or [_stem(_fold(w))]
            expr = f"gen <= {self.generation} and TEXT_MATCH(terms, {quote(' '.join(stems[:1]))})"
            try:
                rows = self._client.query(self.chunks_collection, filter=expr, output_fields=["count(*)"])
            except Exception as exc:
                raise _error(exc, f"text match in {self.chunks_collection}") from None
            df = int(rows[0]["count(*)"]) if rows else 0
            out[w] = math.log((self.size + 1) / (df + 0.5))
        return out

    def _by_id(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        ids = [int(i) for i in ids]
        for a in range(0, len(ids), _INSERT_BATCH):
            part = ids[a:a + _INSERT_BATCH]
            try:
                rows = self._client.query(self.chunks_collection, ids=part, output_fields=fields)
            except Exception as exc:
                raise _error(exc, f"query of {self.chunks_collection}") from None
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
        rows = self._by_id([cid for cid, _ in ranked], ["source", "page", "heading", "start", "end", "text"])
        out = []
        for rank, (cid, score) in enumerate(ranked, start=1):
            r = rows.get(cid)
            if r is None:
                raise IndexCorruptError(f"chunk {cid} is missing from {self.chunks_collection}; rebuild with --rebuild")
            page = None if int(r["page"]) < 0 else int(r["page"])
            out.append(Hit(rank, score, cid, r["source"], page, r["heading"], int(r["start"]), int(r["end"]), r["text"]))
        return out

    def page_text(self, source: str, page: int | None) -> str | None:
        gen = self._live.get(source)
        if gen is None:
            return None
        expr = f"source == {quote(source)} and page == {-1 if page is None else int(page)} and gen == {gen}"
        rows = _rows(self._client.query(self.pages_collection, filter=expr, output_fields=["offset", "text"]))
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
        fields = ["id", "source", "page", "heading", "start", "end", "text", "tokens", "gen", "vector"]
        for rows in self._iterate(self.chunks_collection, fields, batch):
            if not rows:
                continue
            rows.sort(key=lambda r: int(r["id"]))
            chunks = [Chunk(source=r["source"], page=None if int(r["page"]) < 0 else int(r["page"]),
                            heading=r["heading"], start=int(r["start"]), end=int(r["end"]), text=r["text"],
                            tokens=int(r["tokens"])) for r in rows]
            yield [int(r["id"]) for r in rows], chunks, np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def pages(self) -> Iterator[Page]:
        """Every live page part (a long page comes back in parts, each with its offset)."""
        for rows in self._iterate(self.pages_collection, ["source", "page", "offset", "gen", "text"], 2048):
            for r in rows:
                yield Page(source=r["source"], page=None if int(r["page"]) < 0 else int(r["page"]),
                           text=r["text"], kind="text", offset=int(r["offset"]))

    def close(self) -> None:
        self._conn.close()


class MilvusWriter:
    """Adds the next generation's rows; nothing is visible to readers until `commit()`."""

    def __init__(self, conn: _Connection, manifest: dict[str, Any], fresh: bool = False) -> None:
        self._conn = conn
        self._client = conn.client
        conn.ensure_meta()
        head = conn.head()
        self.old_head = head
        self.generation = (int(head["generation"]) if head else 0) + 1
        dim = int(manifest["embedder"]["dim"])
        self.fresh = fresh or head is None
        if self.fresh:
            self.chunks_collection = f"{conn.prefix}_chunks_{self.generation:06d}"
            self.pages_collection = f"{conn.prefix}_pages_{self.generation:06d}"
            for name in (self.chunks_collection, self.pages_collection):
                if self._client.has_collection(name):  # debris of a rebuild that died
                    self._client.drop_collection(name)
            conn.create_data(self.chunks_collection, self.pages_collection, dim)
        else:
            self.chunks_collection, self.pages_collection = head["chunks"], head["pages"]
            for name in (self.chunks_collection, self.pages_collection):
                self._client.load_collection(name)
        self.manifest = json.loads(json.dumps(manifest))  # a deep copy: the caller's stays as it was
        self.manifest.setdefault("files", {})
        self.manifest.setdefault("next_id", 0)
        self.manifest["generation"] = self.generation
        self.manifest["store"] = "milvus"
        section = self.manifest.setdefault("milvus", {})
        section["index"] = _INDEX
        self._live: dict[str, int] = {} if self.fresh else {k: int(v) for k, v in section.get("live", {}).items()}
        if self.fresh:
            self.manifest["files"] = {k: v for k, v in self.manifest["files"].items() if k in self._live}
        self._touched: set[str] = set()
        self._committed = False

    def _insert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        for a in range(0, len(rows), _INSERT_BATCH):
            try:
                self._client.insert(collection, rows[a:a + _INSERT_BATCH])
            except Exception as exc:
                raise _error(exc, f"insert into {collection}") from None

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            return
        ids_ = new_ids(self.manifest, len(chunks), ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = []
        for i, c, v in zip(ids_, chunks, vectors):
            if len(c.text.encode("utf-8")) > _TEXT_MAX:
                raise RagError(f"{c.source}: a chunk of {len(c.text)} characters is over Milvus's text limit; "
                               "use smaller --chunk-tokens")
            rows.append({
                "id": int(i), "source": c.source, "page": -1 if c.page is None else int(c.page),
                "heading": c.heading[:2000], "start": int(c.start), "end": int(c.end), "tokens": int(c.tokens),
                "gen": self.generation, "text": c.text, "terms": terms(f"{c.heading}\n{c.text}")[:16000],
                "vector": v.tolist(),
            })
        self._insert(self.chunks_collection, rows)

    def add_pages(self, pages: Sequence[Page]) -> None:
        rows = []
        for p in pages:
            for a in range(0, max(len(p.text), 1), PAGE_PART):
                rows.append({"source": p.source, "page": -1 if p.page is None else int(p.page),
                             "offset": int(p.offset) + a, "gen": self.generation,
                             "text": p.text[a:a + PAGE_PART], "v": [0.0, 0.0]})
        self._insert(self.pages_collection, rows)

    def finish_file(self, source: str, record: FileRecord) -> None:
        self.manifest["files"][source] = record.__dict__.copy()
        self._live[source] = self.generation
        self._touched.add(source)

    def _delete_new(self, source: str) -> None:
        expr = f"source == {quote(source)} and gen == {self.generation}"
        for name in (self.chunks_collection, self.pages_collection):
            self._client.delete(name, filter=expr)

    def discard_file(self, source: str) -> None:
        """A file failed part-way: drop what this writer added for it; its old version stays."""
        self._delete_new(source)

    def remove_source(self, source: str) -> int:
        record = self.manifest["files"].pop(source, None)
        self._live.pop(source, None)
        self._touched.add(source)
        self._delete_new(source)
        return int(record["chunks"]) if record else 0

    def commit(self) -> None:
        """Make this generation the live one: flush the rows, then one upsert of the head."""
        files = self.manifest["files"]
        self.manifest["chunks"] = sum(int(r["chunks"]) for r in files.values())
        self.manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.manifest["milvus"]["live"] = dict(sorted(self._live.items()))
        self.manifest["milvus"]["touched"] = sorted(self._touched)
        for name in (self.chunks_collection, self.pages_collection):
            self._client.flush(name)
        text = json.dumps(self.manifest, sort_keys=True)
        parts = [text[a:a + _MANIFEST_PART] for a in range(0, len(text), _MANIFEST_PART)] or [""]
        self._conn.put({f"manifest-{self.generation:06d}-{i:04d}": p for i, p in enumerate(parts)})
        head = {"generation": self.generation, "parts": len(parts), "chunks": self.chunks_collection,
                "pages": self.pages_collection}
        # From here abort() keeps its hands off: if the head write fails, the rows are
        # invisible debris for the next sweep; if it succeeded, they are the live index.
        self._committed = True
        self._conn.put({"head": json.dumps(head)})  # the commit
        _tidy(self._conn, head, self.manifest)
        self._conn.close()

    def abort(self) -> None:
        """Drop this writer's rows, unless its commit already went through (then an
        interrupted cleanup is only left to the next writer's sweep)."""
        try:
            if self._committed:
                return
            if self.fresh:
                for name in (self.chunks_collection, self.pages_collection):
                    if self._client.has_collection(name):
                        self._client.drop_collection(name)
            else:
                expr = f"gen >= {self.generation}"
                for name in (self.chunks_collection, self.pages_collection):
                    self._client.delete(name, filter=expr)
        except Exception as exc:  # the next writer sweeps what is left
            log.warning("could not clear an aborted write in Milvus at %s: %s", self._conn.uri, exc)
        finally:
            self._conn.close()


def _tidy(conn: _Connection, head: dict[str, Any], manifest: dict[str, Any], touched: bool = True) -> None:
    """Delete what the live generation no longer uses: rows of later (dead) generations,
    superseded versions of the files the last commit touched, other generations'
    collections and manifests. Safe to repeat; a writer runs it after every commit and
    before it starts, so a crash at any point is mended by the next write."""
    client = conn.client
    g = int(head["generation"])
    live = manifest.get("milvus", {}).get("live", {})
    for name in conn.ours():
        if name not in (head["chunks"], head["pages"]):
            client.drop_collection(name)
    for name in (head["chunks"], head["pages"]):
        client.load_collection(name)
        client.delete(name, filter=f"gen > {g}")
        for source in manifest.get("milvus", {}).get("touched", []) if touched else ():
            client.delete(name, filter=_live_filter(source, live.get(source)))
    stale = [k for k in conn.meta_keys("manifest-") if not k.startswith(f"manifest-{g:06d}-")]
    conn.drop_keys(stale)
    for name in (head["chunks"], head["pages"]):
        client.flush(name)
    conn.put({"clean": str(g)})  # flushes the meta collection


class MilvusBackend:
    """The Milvus store as a `rag.stores.Backend`."""

    name = "milvus"

    def __init__(self, uri: str, prefix: str = "rag", token: str | None = None) -> None:
        if not uri.startswith(("http://", "https://", "tcp://", "grpc://")) and not uri.endswith(".db"):
            raise ConfigError(
                f"--milvus-uri {uri!r}: give a milvus-lite file ending in .db, or a server URL such as "
                "http://localhost:19530"
            )
        self.uri, self.prefix, self.token = uri, prefix, token
        self.lite = uri.endswith(".db")

    @property
    def location(self) -> str:
        return f"{self.uri} ({self.prefix})"

    def _connect(self) -> _Connection:
        if self.lite:
            os.makedirs(os.path.dirname(os.path.abspath(self.uri)), exist_ok=True)
        return _Connection(self.uri, self.prefix, self.token)

    def exists(self) -> bool:
        if self.lite and not os.path.exists(self.uri):
            return False
        conn = self._connect()
        try:
            return conn.head() is not None
        finally:
            conn.close()

    def read_manifest(self) -> dict[str, Any]:
        conn = self._connect()
        try:
            head = conn.head()
            if head is None:
                raise IndexNotFoundError(f"no index in Milvus at {self.location}")
            return conn.manifest(head)
        finally:
            conn.close()

    def open(self) -> MilvusStore:
        if self.lite and not os.path.exists(self.uri):
            raise IndexNotFoundError(
                f"no index at {self.uri}: build one with `rag ingest <folder> --store milvus` (or pass --milvus-uri)"
            )
        return MilvusStore.open(self.uri, self.prefix, self.token)

    def writer(self, manifest: dict[str, Any], fresh: bool = False) -> MilvusWriter:
        return MilvusWriter(self._connect(), manifest, fresh)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """A lease row in the meta collection: host, pid and an expiry. A holder on this
        machine whose process is gone, or any holder past its expiry, is taken over."""
        conn = self._connect()
        try:
            conn.ensure_meta()
            mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
                    "expires": time.time() + _LEASE_SECONDS}
            held = conn.get(["lock"]).get("lock")
            if held and not _stale(json.loads(held)):
                other = json.loads(held)
                raise IndexLockedError(
                    f"another process is writing the index at {self.location} (pid {other.get('pid')} on "
                    f"{other.get('host')}); wait for it to finish"
                )
            conn.put({"lock": json.dumps(mine)})
            if json.loads(conn.get(["lock"]).get("lock", "{}")).get("token") != mine["token"]:
                raise IndexLockedError(f"another process took the write lock of {self.location} first; try again")
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    if json.loads(conn.get(["lock"]).get("lock", "{}")).get("token") == mine["token"]:
                        conn.drop_keys(["lock"])
                        conn.client.flush(conn.meta)
        finally:
            conn.close()

    def sweep(self) -> None:
        conn = self._connect()
        try:
            head = conn.head()
            if head is not None:
                done = conn.get(["clean"]).get("clean") == str(head["generation"])
                _tidy(conn, head, conn.manifest(head), touched=not done)
            else:
                for name in conn.ours():
                    conn.client.drop_collection(name)
        finally:
            conn.close()

    def bytes_on_disk(self) -> int | None:
        if not self.lite:
            return None  # a server's storage is its own business
        path = self.uri
        if os.path.isfile(path):
            return os.path.getsize(path)
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _stale(lease: dict[str, Any]) -> bool:
    if float(lease.get("expires", 0)) < time.time():
        return True
    if lease.get("host") == socket.gethostname():
        try:
            os.kill(int(lease.get("pid", 0)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
    return False
