"""Talking to Milvus for the Milvus store: the collections' schemas, the meta rows
(manifest parts, head, lock), filter literals, and the words BM25 indexes (the client
itself is opened by rag/stores/milvus_connect.py).

Kept apart from rag/stores/milvus.py (reading) and rag/stores/milvus_write.py (commits
and cleanup), which own what the rows mean; this module only knows how to reach them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
import unicodedata
from functools import lru_cache
from typing import Any, Sequence

from ..errors import IndexCorruptError, IndexLockedError, MissingDependencyError, RagError
from ..text import INDEX_WORD as _WORD, search_terms as content_words
from ..manifest import Manifest
from .milvus_connect import client, pymilvus

TEXT_MAX = 65535  # VARCHAR's limit, in bytes
LOCATION_MAX = 256
# Chunk fields added after the first Milvus layout: collections made before them lack
# them, so writers leave them out there and readers fill in their defaults.
LATE_FIELDS = ("location", "ocr")
INDEX = "AUTOINDEX"  # Milvus picks the vector index (HNSW on milvus-lite)
LEASE_SECONDS = 6 * 3600  # how long a writer on another machine that died keeps the lock
_LEASE_SETTLE = 1.0  # seconds between taking the lock on a server and checking it is still ours
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
def quote(value: str) -> str:
    """A string literal for a Milvus filter expression. Raises ValueError for control
    characters Milvus's parser has no escape for (file names are never quoted: rows are
    matched by `source_key`)."""
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise ValueError(f"{value!r} has a control character")
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def source_key(source: str) -> str:
    """What rows are matched by instead of their file name: any name, one safe literal."""
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import snowballstemmer
    except ImportError:
        raise MissingDependencyError("the Milvus store needs snowballstemmer: pip install snowballstemmer") from None
    return snowballstemmer.stemmer("porter")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _fold(text: str) -> str:
    """Lowercase without diacritics, as SQLite's unicode61 tokenizer folds."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> str:
    """A text's words, folded and Porter-stemmed, space-separated: what BM25 indexes.
    milvus-lite's analyzers do not stem; stemming here gives the same terms on a server."""
    return " ".join(stem(w) for w in _WORD.findall(_fold(text)))


def query_terms(question: str) -> list[str]:
    return list(dict.fromkeys(stem(_fold(w)) for w in content_words(question)))


def where_filter(where: Any) -> str:
    """The part of a retriever `Where` that Milvus can filter by itself: file types, and
    source globs made only of `*` and `?`. The retriever checks every hit again."""
    if not where:
        return ""
    parts = []
    if where.types:  # `ext` holds types.file_type(source)
        parts.append(f"ext in [{', '.join(quote(t) for t in sorted(where.file_types()))}]")
    globs = [g for g in where.sources if not any(c in g for c in "[]%_\\")]
    if globs and len(globs) == len(where.sources):
        alts = []
        try:
            for g in globs:
                pattern = g.replace("*", "%").replace("?", "_")
                alts.append(f"source like {quote(pattern)}")
                if "/" not in g:
                    alts.append(f"source like {quote('%/' + pattern)}")
            parts.append("(" + " or ".join(alts) + ")")
        except ValueError:
            pass  # left to the retriever
    return " and ".join(parts)


def failure(exc: Exception, what: str) -> RagError:
    return RagError(f"Milvus {what} failed: {str(exc).strip()[:300]}")


class Connection:
    """A client bound to one index: a database (uri) and a collection prefix."""

    def __init__(self, uri: str, prefix: str, token: str | None) -> None:
        self.uri, self.prefix = uri, prefix
        self.lite = uri.endswith(".db")
        self.client = client(uri, token)
        self.meta = f"{prefix}_meta"
        self._meta_loaded = False
        self._ours = re.compile(rf"{re.escape(prefix)}_(chunks|pages)_\d{{6}}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # -- meta rows ---------------------------------------------------------------------
    def ensure_meta(self) -> None:
        if self._meta_ready():
            return
        DT = pymilvus().DataType
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("key", DT.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("value", DT.VARCHAR, max_length=TEXT_MAX)
        schema.add_field("v", DT.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
        index = self.client.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        self._create(self.meta, schema, index)
        self._meta_loaded = True

    def _meta_ready(self) -> bool:
        """Whether the meta collection exists, loading it the first time: a reader asks for
        the head before every query (MilvusStore.refresh), so this must not cost two calls."""
        if not self._meta_loaded and self.client.has_collection(self.meta):
            self.client.load_collection(self.meta)
            self._meta_loaded = True
        return self._meta_loaded

    def get(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys or not self._meta_ready():
            return {}
        expr = "key in [" + ",".join(quote(k) for k in keys) + "]"
        rows = self.client.query(self.meta, filter=expr, output_fields=["key", "value"])
        return {r["key"]: r["value"] for r in rows}

    def put(self, values: dict[str, str]) -> None:
        self.client.upsert(self.meta, [{"key": k, "value": v, "v": [0.0, 0.0]} for k, v in values.items()])
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
            head = json.loads(raw)
            int(head["generation"]), int(head["parts"]), str(head["chunks"]), str(head["pages"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise IndexCorruptError(f"the head row of {self.meta} at {self.uri} is damaged; rebuild with --rebuild") from None
        return head

    def manifest(self, head: dict[str, Any]) -> Manifest:
        g, parts = int(head["generation"]), int(head["parts"])
        keys = [manifest_key(g, i) for i in range(parts)]
        got = self.get(keys)
        if len(got) != parts:
            raise IndexCorruptError(f"the manifest of generation {g} in {self.meta} at {self.uri} is incomplete; "
                                    "rebuild with --rebuild")
        try:
            data = json.loads("".join(got[k] for k in keys))
        except json.JSONDecodeError as exc:
            raise IndexCorruptError(f"the manifest in {self.meta} at {self.uri} is damaged ({exc})") from None
        return Manifest.from_json(data, f"{self.meta} at {self.uri}")

    # -- data collections --------------------------------------------------------------
    def late_fields(self, chunks: str) -> tuple[str, ...]:
        """Which of LATE_FIELDS a chunks collection has (older ones have none)."""
        have = {f["name"] for f in self.client.describe_collection(chunks)["fields"]}
        return tuple(f for f in LATE_FIELDS if f in have)

    def create_data(self, chunks: str, pages: str, dim: int) -> None:
        module = pymilvus()
        DT = module.DataType
        s = self.client.create_schema(auto_id=False)
        s.add_field("id", DT.INT64, is_primary=True)
        s.add_field("source", DT.VARCHAR, max_length=4096)
        s.add_field("skey", DT.VARCHAR, max_length=40)  # source_key(source)
        s.add_field("ext", DT.VARCHAR, max_length=64)  # types.file_type(source), for --where type=
        s.add_field("page", DT.INT64)  # -1: a file without pages
        s.add_field("heading", DT.VARCHAR, max_length=8192)
        for name in ("start", "end", "tokens", "gen"):
            s.add_field(name, DT.INT64)
        s.add_field("text", DT.VARCHAR, max_length=TEXT_MAX)
        s.add_field("location", DT.VARCHAR, max_length=LOCATION_MAX)  # see LATE_FIELDS
        s.add_field("ocr", DT.BOOL)
        s.add_field("terms", DT.VARCHAR, max_length=TEXT_MAX, enable_analyzer=True, enable_match=True)
        s.add_field("sparse", DT.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DT.FLOAT_VECTOR, dim=dim)
        s.add_function(module.Function(name="bm25", function_type=module.FunctionType.BM25,
                                       input_field_names=["terms"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=INDEX, metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self._create(chunks, s, index)
        p = self.client.create_schema(auto_id=True)
        p.add_field("id", DT.INT64, is_primary=True)
        p.add_field("source", DT.VARCHAR, max_length=4096)
        p.add_field("skey", DT.VARCHAR, max_length=40)
        for name in ("page", "offset", "gen"):
            p.add_field(name, DT.INT64)
        p.add_field("text", DT.VARCHAR, max_length=TEXT_MAX)
        p.add_field("v", DT.FLOAT_VECTOR, dim=2)
        index = self.client.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        self._create(pages, p, index)

    def _create(self, name: str, schema: Any, index: Any) -> None:
        # create_collection(index_params=...) polls every index every 0.5 s until it is
        # built, 2 s per new index here for nothing: the indexes are created without the
        # wait, and loading the collection is what makes it searchable.
        self.client.create_collection(name, schema=schema, consistency_level="Strong")
        self.client.create_index(name, index, sync=False)
        self.client.load_collection(name)

    def ours(self) -> list[str]:
        """Every data collection of this index (live, kept or debris), and no other index's."""
        return [c for c in self.client.list_collections() if self._ours.fullmatch(c)]

    def count(self, collection: str, expr: str) -> int:
        rows = self.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # -- the writer's lease ----------------------------------------------------------------
    def take_lease(self, where: str) -> str:
        """Write a lease row naming this process, or raise IndexLockedError if a live one
        holds it. Returns the lease's token."""
        self.ensure_meta()
        held = _lease(self.get(["lock"]).get("lock"))
        if held and not _stale(held):
            raise IndexLockedError(
                f"another process is writing the index at {where} (pid {held.get('pid')} on "
                f"{held.get('host')}); wait for it to finish"
            )
        token = os.urandom(8).hex()
        self.put({"lock": json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": token,
                                      "expires": time.time() + LEASE_SECONDS})})
        if not self.lite:
            # Two writers that both saw no lease both write one: the later write wins, and
            # each checks after a pause, so only one of them goes on. (milvus-lite needs
            # none of this: its file is open in one process at a time.)
            time.sleep(_LEASE_SETTLE)
        if self.lease_token() != token:
            raise IndexLockedError(f"another process took the write lock of {where} first; try again")
        return token

    def renew_lease(self, token: str) -> None:
        """Push a held lease's expiry forward (a writer does this while it works)."""
        held = _lease(self.get(["lock"]).get("lock"))
        if held and held.get("token") == token:
            self.put({"lock": json.dumps({**held, "expires": time.time() + LEASE_SECONDS})})

    def lease_token(self) -> str | None:
        held = _lease(self.get(["lock"]).get("lock"))
        return held.get("token") if held else None

    def drop_lease(self, token: str) -> None:
        with contextlib.suppress(Exception):
            if self.lease_token() == token:
                self.drop_keys(["lock"])
                self.client.flush(self.meta)


def manifest_key(generation: int, part: int) -> str:
    return f"manifest-{generation:06d}-{part:04d}"


def _lease(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        held = json.loads(raw)
        return held if isinstance(held, dict) else {}
    except json.JSONDecodeError:
        return {}  # damaged: treated as stale


def _stale(lease: dict[str, Any]) -> bool:
    """A lease of a dead process on this host, or (held elsewhere) past its expiry; a
    live holder on this host keeps it however long it runs."""
    try:
        if lease.get("host") == socket.gethostname():
            os.kill(int(lease.get("pid", 0)), 0)
            return False
        return float(lease.get("expires", 0)) < time.time()
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, TypeError):
        return not lease
