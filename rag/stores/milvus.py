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

Milvus has no transactions, so a commit works like the FAISS store's CURRENT flip: every
row carries the generation that wrote it; readers see rows of generations up to the
head's, and of each file only the generation the manifest lists as its live version
(`manifest["milvus"]["live"]`). A writer adds rows under the next generation, then
writes the manifest and upserts the head row: that single-row write is the commit.
Rows a commit supersedes are deleted one commit later (`_tidy`), so a reader that
started a query just before a commit finishes it; a reader follows each new commit
when its next query starts (`refresh`). A writer killed at any point leaves rows no
reader sees, which the next writer sweeps. `--rebuild` writes new collections and
drops the old ones one commit later.

The compromise: a milvus-lite file is open in one process at a time (its own lock), so
there searches wait for an ingest to finish; a server has no such limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, RagError
from ..types import Chunk, Hit, Page
from .milvus_db import (
    TEXT_MAX, Connection, failure, manifest_key, query_terms, source_key, stem, suffix, terms, where_filter,
)
from .records import FileRecord, new_ids, now_iso

log = logging.getLogger(__name__)

PAGE_PART = 8000  # characters per page row: at most 32,000 bytes of UTF-8, under VARCHAR's 65,535
_MANIFEST_PART = 8000
_INSERT_BATCH = 1000
_SEARCH_LIMIT = 16384  # Milvus's top-k ceiling


def _page(value: Any) -> int | None:
    return None if int(value) < 0 else int(value)


class MilvusStore:
    """A read-only view of the committed state of a Milvus index; `refresh()` moves it to
    the latest commit (the retriever calls it before each query)."""

    def __init__(self, conn: Connection, head: dict[str, Any], manifest: dict[str, Any]) -> None:
        self._conn = conn
        self._client = conn.client
        self._adopt(head, manifest)

    def _adopt(self, head: dict[str, Any], manifest: dict[str, Any]) -> None:
        """Switch to a commit; checked in full before anything changes."""
        for name in (head["chunks"], head["pages"]):
            if not self._client.has_collection(name):
                raise IndexCorruptError(f"collection {name} is missing at {self._conn.uri}; rebuild with --rebuild")
            self._client.load_collection(name)
        fields = {f["name"]: f for f in self._client.describe_collection(head["chunks"])["fields"]}
        dim = int(manifest["embedder"]["dim"])
        if int(fields["vector"]["params"]["dim"]) != dim:
            raise IndexCorruptError(f"collection {head['chunks']} holds vectors of another dimension "
                                    f"than the manifest's {dim}")
        if getattr(self, "manifest", None) and self.manifest["embedder"] != manifest["embedder"]:
            raise IndexMismatchError(
                f"the index at {self.location} was rebuilt with embedder {manifest['embedder']['name']} while "
                "this process had it open; open it again"
            )
        self.manifest = manifest
        self.chunks_collection, self.pages_collection = head["chunks"], head["pages"]
        self.generation = int(head["generation"])
        self._live: dict[str, int] = {k: int(v) for k, v in manifest.get("milvus", {}).get("live", {}).items()}

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
        return int(self.manifest["embedder"]["dim"])

    @property
    def size(self) -> int:
        return int(self.manifest.get("chunks", 0))

    def files(self) -> dict[str, FileRecord]:
        return {k: FileRecord(**v) for k, v in self.manifest.get("files", {}).items()}

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
            expr = f"gen <= {self.generation} and TEXT_MATCH(terms, {json.dumps(stems[0])})"
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
        for a in range(0, len(ids), _INSERT_BATCH):
            try:
                rows = self._client.query(self.chunks_collection, ids=ids[a:a + _INSERT_BATCH], output_fields=fields)
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
        rows = self._by_id([cid for cid, _ in ranked], ["source", "page", "heading", "start", "end", "text"])
        out = []
        for rank, (cid, score) in enumerate(ranked, start=1):
            r = rows.get(cid)
            if r is None:
                raise IndexCorruptError(f"chunk {cid} is missing from {self.chunks_collection}; rebuild with --rebuild")
            out.append(Hit(rank, score, cid, r["source"], _page(r["page"]), r["heading"], int(r["start"]),
                           int(r["end"]), r["text"]))
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
        fields = ["id", "source", "page", "heading", "start", "end", "text", "tokens", "gen", "vector"]
        for rows in self._iterate(self.chunks_collection, fields, batch):
            if not rows:
                continue
            rows.sort(key=lambda r: int(r["id"]))
            chunks = [Chunk(source=r["source"], page=_page(r["page"]), heading=r["heading"], start=int(r["start"]),
                            end=int(r["end"]), text=r["text"], tokens=int(r["tokens"])) for r in rows]
            yield [int(r["id"]) for r in rows], chunks, np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def pages(self) -> Iterator[Page]:
        """Every live page part (a long page comes back in parts, each with its offset)."""
        for rows in self._iterate(self.pages_collection, ["source", "page", "offset", "gen", "text"], 2048):
            for r in rows:
                yield Page(source=r["source"], page=_page(r["page"]), text=r["text"], kind="text",
                           offset=int(r["offset"]))

    def close(self) -> None:
        self._conn.close()


class MilvusWriter:
    """Adds the next generation's rows; nothing is visible to readers until `commit()`."""

    def __init__(self, conn: Connection, manifest: dict[str, Any], fresh: bool = False,
                 lease: str | None = None) -> None:
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
            conn.create_data(self.chunks_collection, self.pages_collection, int(manifest["embedder"]["dim"]))
        else:
            self.chunks_collection, self.pages_collection = head["chunks"], head["pages"]
            for name in (self.chunks_collection, self.pages_collection):
                self._client.load_collection(name)
                self._client.delete(name, filter=f"gen >= {self.generation}")  # a dead writer's rows
        self.manifest = json.loads(json.dumps(manifest))  # a deep copy: the caller's stays as it was
        self.manifest.setdefault("files", {})
        self.manifest.setdefault("next_id", 0)
        self.manifest["generation"] = self.generation
        self.manifest["store"] = "milvus"
        section = self.manifest.setdefault("milvus", {})
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
        ids_ = new_ids(self.manifest, len(chunks), ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = []
        for i, c, v in zip(ids_, chunks, vectors):
            if len(c.text.encode("utf-8", "surrogatepass")) > TEXT_MAX:
                raise RagError(f"{c.source}: a chunk of {len(c.text)} characters is over Milvus's text limit; "
                               "use smaller --chunk-tokens")
            rows.append({
                "id": int(i), "source": c.source, "skey": source_key(c.source), "ext": suffix(c.source)[:60],
                "page": -1 if c.page is None else int(c.page), "heading": c.heading[:2000], "start": int(c.start),
                "end": int(c.end), "tokens": int(c.tokens), "gen": self.generation, "text": c.text,
                "terms": terms(f"{c.heading}\n{c.text}")[:16000], "vector": v.tolist(),
            })
        self._insert(self.chunks_collection, rows)
        if self.lease is not None and time.monotonic() - self._renewed > 600:
            self._conn.renew_lease(self.lease)
            self._renewed = time.monotonic()

    def add_pages(self, pages: Sequence[Page]) -> None:
        rows = []
        for p in pages:
            for a in range(0, max(len(p.text), 1), PAGE_PART):
                rows.append({"source": p.source, "skey": source_key(p.source), "page": -1 if p.page is None else int(p.page),
                             "offset": int(p.offset) + a, "gen": self.generation, "text": p.text[a:a + PAGE_PART],
                             "v": [0.0, 0.0]})
        self._insert(self.pages_collection, rows)

    def finish_file(self, source: str, record: FileRecord) -> None:
        self.manifest["files"][source] = record.__dict__.copy()
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
        record = self.manifest["files"].pop(source, None)
        self._live.pop(source, None)
        self._touched.add(source)
        self._delete_new(source)
        return int(record["chunks"]) if record else 0

    def commit(self) -> None:
        """Make this generation the live one: check and flush the rows, write the
        manifest, then one upsert of the head."""
        files = self.manifest["files"]
        self.manifest["chunks"] = sum(int(r["chunks"]) for r in files.values())
        self.manifest["updated_at"] = now_iso()
        section = self.manifest["milvus"]
        section["live"] = dict(sorted(self._live.items()))
        # Only files whose earlier version is still stored have anything to delete later.
        section["touched"] = {s: self._before[s] for s in sorted(self._touched) if self._before.get(s) is not None}
        section["touched_before"] = self._touched_before
        section["previous"] = ([self.old_head["chunks"], self.old_head["pages"]]
                               if self.old_head and self.fresh else [])
        for name in (self.chunks_collection, self.pages_collection):
            self._client.flush(name)
        mine = sum(int(files[s]["chunks"]) for s, g in self._live.items() if g == self.generation)
        stored = self._conn.count(self.chunks_collection, f"gen == {self.generation}")
        if stored != mine:
            raise IndexCorruptError(f"Milvus at {self._conn.uri} holds {stored} new chunk rows in "
                                    f"{self.chunks_collection}, {mine} were written; the index is left as it was")
        text = json.dumps(self.manifest, sort_keys=True)
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
        tidy(self._conn, head, self.manifest)
        self._conn.close()

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


def tidy(conn: Connection, head: dict[str, Any], manifest: dict[str, Any], superseded: bool = True) -> None:
    """Delete what no reader needs any more: rows of generations after the head's
    (a writer that died), the versions the previous commit superseded, collections and
    manifests older than the previous commit. The versions this commit superseded stay
    one commit longer, for readers that were mid-query. Safe to repeat: each writer runs
    it after its commit and before it starts."""
    client = conn.client
    g = int(head["generation"])
    section = manifest.get("milvus", {})
    live = section.get("live", {})
    keep = {head["chunks"], head["pages"], *section.get("previous", [])}
    for name in conn.ours():
        if name not in keep:
            client.drop_collection(name)
    touched = section.get("touched", {}) if superseded else {}
    plan = {s: tuple(x for x in (live.get(s), before) if x is not None) for s, before in touched.items()}
    for source in section.get("touched_before", []) if superseded else ():
        plan.setdefault(source, tuple(x for x in (live.get(source),) if x is not None))
    for name in (head["chunks"], head["pages"]):
        client.load_collection(name)
        client.delete(name, filter=f"gen > {g}")
        for expr in _superseded(plan):
            client.delete(name, filter=expr)
        client.flush(name)
    conn.drop_keys([k for k in conn.meta_keys("manifest-")
                    if not k.startswith((f"manifest-{g:06d}-", f"manifest-{g - 1:06d}-"))])
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
        self._lease: str | None = None  # while this backend holds the write lock

    @property
    def location(self) -> str:
        return f"{self.uri} ({self.prefix})"

    def _connect(self) -> Connection:
        if self.lite:
            os.makedirs(os.path.dirname(os.path.abspath(self.uri)), exist_ok=True)
        return Connection(self.uri, self.prefix, self.token)

    def exists(self) -> bool:
        if self.lite and not os.path.exists(self.uri):
            return False
        conn = self._connect()
        try:
            return "head" in conn.get(["head"])  # damaged or not, as FAISS's CURRENT
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
        return MilvusWriter(self._connect(), manifest, fresh, lease=self._lease)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """A lease row in the meta collection (host, pid, expiry): a holder on this machine
        whose process is gone, or any holder past its expiry, is taken over."""
        conn = self._connect()
        try:
            token = conn.take_lease(self.location)
            self._lease = token
            try:
                yield
            finally:
                self._lease = None
                conn.drop_lease(token)
        finally:
            conn.close()

    def sweep(self) -> None:
        """Finish what a killed writer left (see `tidy`); a damaged index is left for
        `--rebuild`, which does not need it readable."""
        conn = self._connect()
        try:
            head = conn.head()
            if head is None:
                for name in conn.ours():
                    conn.client.drop_collection(name)
            else:  # the superseded rows only once: a sync of many files deletes per file
                done = conn.get(["clean"]).get("clean") == str(head["generation"])
                tidy(conn, head, conn.manifest(head), superseded=not done)
        except IndexCorruptError:
            return
        finally:
            conn.close()

    def bytes_on_disk(self) -> int | None:
        if not self.lite:
            return None  # a server's storage is its own business
        if os.path.isfile(self.uri):
            return os.path.getsize(self.uri)
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(self.uri) for f in fs)
