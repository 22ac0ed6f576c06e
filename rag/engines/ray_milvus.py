"""Ray workers that write their rows straight to a Milvus server (`--engine ray --store
milvus --milvus-uri http://...`), so vectors never travel back to the driver.

The driver's MilvusWriter has opened the next generation (its collections and number)
and holds the write lock; readers see none of it until the driver's commit flips the
head. Each embedder actor, once it has embedded a batch of files, inserts every file's
chunk and page rows under that generation itself (the rows MilvusWriter would have
written: `chunk_rows`, `page_rows`). The driver still gets each file's pages and chunks
(the manifest's counts, the report) and stores them through `DirectWriter`, which skips
the rows that are already in and keeps the lock's lease alive.

Chunk ids come from `IdBlock`, one small actor on the driver's node that hands out ranges
from the draft's next id; the driver moves the draft past the last range before its
commit. A batch Ray runs again (its node was lost) first deletes its files' rows in this
generation, so nothing is stored twice, and the commit's row count check refuses the
generation if anything still were. A milvus-lite file (`*.db`) is open in the driver's
process only: with one, the vectors come back as with FAISS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..stores.milvus_db import failure, source_key
from ..stores.milvus_write import chunk_rows, page_rows

if TYPE_CHECKING:
    from ..config import Settings
    from ..manifest import FileRecord
    from ..prefetch import Loaded
    from ..stores import Writer
    from ..types import Chunk, Page

INSERT_BATCH = 1000  # rows per insert call


def writes_direct(settings: "Settings", writer: "Writer") -> bool:
    """Whether workers write their own rows: a Milvus server, not a milvus-lite file."""
    from ..stores.milvus_write import MilvusWriter

    return isinstance(writer, MilvusWriter) and settings.store == "milvus" and not settings.milvus_target.endswith(".db")


class IdBlock:
    """Hands out ranges of chunk ids (a Ray actor; one per ingest)."""

    def __init__(self, first: int) -> None:
        self.next = first

    def take(self, n: int) -> int:
        first = self.next
        self.next += n
        return first

    def end(self) -> int:
        return self.next


@dataclass(frozen=True)
class MilvusJob:
    """Where the workers write: the server, the generation's collections and number."""

    uri: str
    token: str | None
    chunks: str
    pages: str
    generation: int
    late: tuple[str, ...]
    ids: Any  # the IdBlock actor's handle


def start(ray: Any, settings: "Settings", writer: Any) -> MilvusJob:
    """The job for the workers, and the id actor, pinned to this (the driver's) node and
    never restarted: a new one would hand out ids again."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(num_cpus=0, max_restarts=0)(IdBlock)
    ids = actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(writer.draft.next_id)
    return MilvusJob(settings.milvus_target, settings.milvus_token, writer.chunks_collection, writer.pages_collection,
                     writer.generation, tuple(writer.late), ids)


class RowWriter:
    """An embedder actor's connection to the server (opened on its first batch)."""

    def __init__(self, job: MilvusJob) -> None:
        from ..stores.milvus_connect import client

        self.job = job
        self.client = client(job.uri, job.token)
        for name in (job.chunks, job.pages):
            self.client.load_collection(name)

    def write(self, sources: Sequence[str], files: Sequence["Loaded"], vectors: np.ndarray) -> None:
        import ray

        job, at = self.job, 0
        for source, loaded in zip(sources, files):
            chunks: list[Chunk] = [c for page in loaded.chunks for c in page]
            mine, at = vectors[at:at + len(chunks)], at + len(chunks)
            if loaded.error is not None:
                continue
            expr = f'skey == "{source_key(source)}" and gen == {job.generation}'
            for name in (job.chunks, job.pages):
                self.client.delete(name, filter=expr)  # what an earlier run of this batch left
            first = ray.get(job.ids.take.remote(len(chunks)))
            self._insert(job.chunks, chunk_rows(chunks, mine, range(first, first + len(chunks)), job.generation,
                                                job.late))
            self._insert(job.pages, page_rows(list(loaded.pages), job.generation))

    def _insert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        for a in range(0, len(rows), INSERT_BATCH):
            try:
                self.client.insert(collection, rows[a:a + INSERT_BATCH])
            except Exception as exc:
                raise failure(exc, f"insert into {collection}") from None


class DirectWriter:
    """The driver's writer while workers write the rows: rows are skipped, the rest is the
    MilvusWriter's own (file records, removals, commit)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.draft = inner.draft

    @property
    def manifest(self) -> Any:
        return self.inner.manifest

    def add_chunks(self, chunks: Sequence["Chunk"], vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        self.inner.keep_lease()

    def add_pages(self, pages: Sequence["Page"]) -> None:
        pass

    def finish_file(self, source: str, record: "FileRecord") -> None:
        self.inner.finish_file(source, record)

    def discard_file(self, source: str) -> None:
        self.inner.discard_file(source)

    def remove_source(self, source: str) -> int:
        return int(self.inner.remove_source(source))

    def commit(self) -> Any:
        return self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()
