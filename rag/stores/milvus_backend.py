"""The Milvus store as a `rag.stores.Backend` (layout and commit protocol in
rag/stores/milvus.py): where the database is, whether an index is there, the lease that
is the write lock, the sweep after a killed writer, and the reader and writer it opens."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from ..errors import ConfigError, IndexCorruptError, IndexNotFoundError
from ..manifest import Manifest
from . import milvus_write
from .milvus import MilvusStore
from .milvus_db import Connection
from .milvus_write import MilvusWriter


class MilvusBackend:
    """The Milvus store as a `rag.stores.Backend`."""

    name = "milvus"

    def __init__(self, uri: str, prefix: str = "rag", token: str | None = None,
                 vectors: dict[str, Any] | None = None) -> None:
        if not uri.startswith(("http://", "https://", "tcp://", "grpc://")) and not uri.endswith(".db"):
            raise ConfigError(f"--milvus-uri {uri!r}: give a milvus-lite file ending in .db, or a server URL "
                              "such as http://localhost:19530")
        self.uri, self.prefix, self.token = uri, prefix, token
        self.vectors = vectors  # recorded for a migration to FAISS; Milvus itself needs none
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

    def read_manifest(self) -> Manifest:
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

    def kept_policy(self, manifest: Manifest) -> str | None:
        return None  # Milvus indexes its vectors itself; the FAISS policy only rides along

    def writer(self, manifest: Manifest, fresh: bool = False) -> MilvusWriter:
        return MilvusWriter(self._connect(), manifest, fresh, lease=self._lease, vectors=self.vectors)

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
        """Finish the cleanup of a commit whose writer was killed after its flip (see
        `tidy`); a writer clears a killed writer's uncommitted rows itself. A damaged
        index is left for `--rebuild`, which does not need it readable."""
        conn = self._connect()
        try:
            head = conn.head()
            if head is None:
                for name in conn.ours():
                    conn.client.drop_collection(name)
            elif conn.get(["clean"]).get("clean") != str(head["generation"]):
                milvus_write.tidy(conn, head, conn.manifest(head))
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
