"""Copying an index from one store backend to the other (`rag migrate`), without embedding
anything again: chunk ids, vectors, page texts and the per-file records move as they are,
so the copy answers every search the way the original does."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace as replaced
from typing import Any, Callable

from .stores import vector_index
from .config import STORES, Settings
from .errors import ConfigError, IndexCorruptError, RagError
from .manifest import Manifest
from .stores import backend_for, transaction
from .types import Progress

_PAGE_BATCH = 1000


@dataclass(frozen=True)
class MigrateReport:
    source: str  # where the index was read: "faiss" or "milvus", and its location
    source_location: str
    destination: str
    destination_location: str
    files: int
    chunks: int
    pages: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fresh_copy(old: Manifest, to: str, source: str, location: str) -> Manifest:
    """The manifest a copy starts from: how the original was built (embedder, chunking,
    vector storage), none of its contents, and where it came from."""
    built = vector_index.describe(old.backend.get("vectors"))
    kept = {k: v for k, v in old.backend.items() if k not in ("milvus", "generation", "vectors")}
    policy = vector_index.describe({"storage": built["storage"], "ann_from": built["ann_from"]})
    return replaced(old, files={}, next_id=0, chunks=0, backend={
        **kept, "store": to, "migrated_from": {"store": source, "location": location}, "vectors": policy})


def migrate(
    settings: Settings, to: str, replace: bool = False, progress: Callable[[Progress], None] | None = None
) -> MigrateReport:
    """Copy the index the settings name (`settings.store`) into the `to` backend.

    Raises:
        ConfigError: `to` is not a backend, or is the one the index is already in.
        RagError: the destination already holds an index and `replace` is False.
        IndexCorruptError: the copy does not hold what the original holds.
    """
    if to not in STORES:
        raise ConfigError(f"--to must be one of {', '.join(STORES)}, got {to!r}")
    if to == settings.store:
        raise ConfigError(f"the index is already in {to}: pass --store with the backend to copy from")
    started = time.perf_counter()
    src, dst = backend_for(settings), backend_for(settings, to)
    with src.write_lock(), transaction(dst, sweep=False) as tx:
        if dst.exists() and not replace:
            raise RagError(f"{dst.location} already holds an index; pass --replace to overwrite it")
        reader = src.open()
        try:
            old = reader.manifest
            writer = tx.begin(_fresh_copy(old, to, src.name, src.location), fresh=True)
            chunks = pages = 0
            for ids, batch, vectors in reader.export():
                writer.add_chunks(batch, vectors, ids)
                chunks += len(ids)
                if progress:
                    progress(Progress("copy", chunks, reader.size))
            buffer = []
            for page in reader.pages():
                buffer.append(page)
                if len(buffer) >= _PAGE_BATCH:
                    writer.add_pages(buffer)
                    pages += len(buffer)
                    buffer = []
            writer.add_pages(buffer)
            pages += len(buffer)
            files = reader.files()
            for source, record in files.items():
                writer.finish_file(source, record)
            writer.draft.next_id = max(writer.draft.next_id, old.next_id)
            tx.commit()
        finally:
            reader.close()
        copy = dst.open()
        try:
            if copy.size != chunks or set(copy.files()) != set(files) or chunks != old.chunks:
                raise IndexCorruptError(
                    f"the copy at {dst.location} holds {copy.size} chunks of {len(copy.files())} files, the original "
                    f"{old.chunks} of {len(files)}; the original at {src.location} is untouched"
                )
        finally:
            copy.close()
    return MigrateReport(src.name, src.location, dst.name, dst.location, len(files), chunks, pages,
                         time.perf_counter() - started)
