"""Where an index lives: one interface, two backends.

- `faiss` (default, rag/stores/faiss.py): files under an index directory: FAISS vectors,
  SQLite metadata with an FTS5 lexical index, generations flipped atomically.
- `milvus` (rag/stores/milvus.py): collections in a Milvus database, either a local
  milvus-lite file or a Milvus server or cluster; Milvus does the vector search, the
  BM25 search and the scalar filtering.

Everything above this package (ingest, retrieval, ask, list, remove, migrate) talks to
a `Backend` chosen by `backend_for(settings)`, the `Store` it opens for reading and the
`Writer` it opens for one batch of changes, and so behaves the same on both.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from ..config import Settings
from ..errors import IndexLockedError
from ..manifest import Draft, FileRecord, Manifest
from ..types import Chunk, Hit, Page

__all__ = ["Backend", "Store", "Transaction", "Writer", "backend_for", "transaction"]


class Store(Protocol):
    """A read-only view of one committed state of an index."""

    manifest: Manifest

    @property
    def location(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def size(self) -> int: ...
    def files(self) -> dict[str, FileRecord]: ...
    def search(self, query_vectors: np.ndarray, k: int, where: Any = None) -> list[list[tuple[int, float]]]: ...
    def lexical_search(self, query: str, k: int, where: Any = None) -> list[tuple[int, float]]: ...
    def idf(self, words: Iterable[str]) -> dict[str, float]: ...
    def vectors_of(self, ids: Sequence[int]) -> np.ndarray: ...
    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]: ...
    def page_text(self, source: str, page: int | None) -> str | None: ...
    def export(self, batch: int = 4096) -> Iterator[tuple[list[int], list[Chunk], np.ndarray]]: ...
    def pages(self) -> Iterator[Page]: ...
    def refresh(self) -> None:
        """Move to the latest commit, if the backend can (FAISS: a fixed snapshot)."""
    def close(self) -> None: ...


class Writer(Protocol):
    """One batch of changes; readers see none of it until `commit()`, and `abort()` (or a
    killed process) leaves the index as it was. Changes to the manifest go through
    `draft`; `commit()` returns (and `manifest` then holds) the manifest made live."""

    draft: Draft
    manifest: Manifest | None

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None: ...
    def add_pages(self, pages: Sequence[Page]) -> None: ...
    def finish_file(self, source: str, record: FileRecord) -> None: ...
    def discard_file(self, source: str) -> None: ...
    def remove_source(self, source: str) -> int: ...
    def move_file(self, old: str, new: str, record: FileRecord) -> None:
        """Give a stored file (chunks, vectors, pages) a new name and record: a file that
        moved on disk; `new` names no stored file."""
    def commit(self) -> Manifest: ...
    def abort(self) -> None: ...


class Backend(Protocol):
    name: str

    @property
    def location(self) -> str: ...
    def exists(self) -> bool: ...
    def read_manifest(self) -> Manifest: ...
    def open(self) -> Store: ...
    def writer(self, manifest: Manifest, fresh: bool = False) -> Writer: ...
    def kept_policy(self, manifest: Manifest) -> str | None:
        """How the index keeps vectors, when the settings ask otherwise (None: as asked)."""
    def write_lock(self) -> AbstractContextManager[None]: ...
    def sweep(self) -> None: ...
    def bytes_on_disk(self) -> int | None: ...


def backend_for(settings: Settings, store: str | None = None) -> Backend:
    """The backend the settings name (or `store`, to reach the other one: rag migrate)."""
    name = store or settings.store
    vectors = {"storage": settings.vector_storage, "ann_from": settings.ann_from}
    if name == "milvus":
        from .milvus_backend import MilvusBackend

        return MilvusBackend(settings.milvus_target, settings.milvus_collection, settings.milvus_token, vectors)
    from .faiss import FaissBackend

    return FaissBackend(settings.index_dir, vectors)


class Transaction:
    """One write to an index, begun inside `transaction()`: read the manifest, `begin` a
    writer, `commit`. Leaving the block without a commit (or on an error) aborts it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.writer: Writer | None = None

    def begin(self, manifest: Manifest, fresh: bool = False) -> Writer:
        if self.writer is not None:
            raise RuntimeError("a transaction has one writer")
        self.writer = self.backend.writer(manifest, fresh=fresh)
        return self.writer

    def commit(self) -> Manifest:
        if self.writer is None:
            raise RuntimeError("nothing to commit: begin() was not called")
        return self.writer.commit()


@contextlib.contextmanager
def transaction(backend: Backend, sweep: bool = True, wait: float = 0.0) -> Iterator[Transaction]:
    """Hold the index's writer lock, clear what a killed earlier writer left (unless
    `sweep` is False), and abort the writer unless it committed: the one write sequence
    of ingest, remove and migrate. `wait`: seconds to wait for another writer first.

    Raises:
        IndexLockedError: another process is writing the index (still, after `wait`).
    """
    with _locked(backend, wait):
        if sweep:
            backend.sweep()
        tx = Transaction(backend)
        try:
            yield tx
        finally:
            if tx.writer is not None and tx.writer.manifest is None:
                tx.writer.abort()


@contextlib.contextmanager
def _locked(backend: Backend, wait: float) -> Iterator[None]:
    """The writer lock, tried again every 0.2 s for `wait` seconds while another holds it."""
    deadline = time.monotonic() + wait
    while True:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(backend.write_lock())
            except IndexLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
                continue
            yield
            return
