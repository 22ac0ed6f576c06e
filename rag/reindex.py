"""Re-embedding an index from its stored chunk texts (`rag reindex`): a new generation
with another embedder (or embedder variant), built without reading, parsing or OCRing a
single document again.

The chunks keep their ids, texts, spans and pages; only the vectors and the manifest's
embedder change. The new generation is written beside the live one (a fresh FAISS
writer) and made live by the usual atomic flip, so the old index answers every search
until then, and a run killed or interrupted before the flip leaves it exactly as it
was. An interrupted run resumes cheaply: with the embedding cache on (the default) the
vectors it computed are cached, and the next run embeds only the rest. The chunking is
kept as it is: a model with a shorter input than the chunks sees them truncated, as it
would at ingest.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

from .config import Settings
from .embedders import Embedder, make_embedder
from .embedders.cache import CachedEmbedder, cache_file
from .errors import ConfigError
from .manifest import EmbedderInfo, Manifest, now_iso
from .stores import backend_for, transaction, vector_index
from .types import Progress

_PAGE_BATCH = 1000
_CHUNK_BATCH = 512


@dataclass(frozen=True)
class ReindexReport:
    index_dir: str
    old_embedder: str
    new_embedder: str
    files: int
    chunks: int
    embedded: int  # vectors computed (the rest came from the embedding cache)
    seconds: float
    changed: bool  # False: the index was already built with this embedder; nothing was written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fresh(old: Manifest, embedder: Embedder) -> Manifest:
    """The manifest the new generation starts from: the old one's chunking and vector
    policy, the new embedder, no contents yet, and what it was re-embedded from."""
    built = vector_index.describe(old.backend.get("vectors"))
    kept = {k: v for k, v in old.backend.items() if k not in ("generation", "vectors", "segments", "base_rows")}
    policy = vector_index.describe({"storage": built["storage"], "ann_from": built["ann_from"]})
    return replace(old, embedder=EmbedderInfo(embedder.name, embedder.dim, embedder.max_tokens), files={}, next_id=0,
                   chunks=0, backend={**kept, "vectors": policy,
                                      "reindexed_from": {"embedder": old.embedder.name, "at": now_iso()}})


def reindex(settings: Settings, embedder: Embedder | None = None, lock_wait: float = 0.0,
            progress: Callable[[Progress], None] | None = None) -> ReindexReport:
    """Re-embed every stored chunk of the index the settings name with `embedder` (by
    default the one `settings.embed_model` names) and make that the live index.

    Raises:
        ModelNotFoundError: the embedding model cannot be found or loaded.
        IndexNotFoundError: there is no index to re-embed.
        IndexLockedError: another process is writing the index.
        ConfigError: the index is not in the FAISS store.
    """
    started = time.perf_counter()
    backend = backend_for(settings)
    if backend.name != "faiss":
        raise ConfigError(f"rag reindex works on the faiss store, not {backend.name}: "
                          "rag migrate --to faiss, then reindex")
    old = backend.read_manifest()  # a missing index fails before a model is loaded
    embedder = embedder or make_embedder(settings)
    with transaction(backend, wait=lock_wait) as tx:
        reader = backend.open()
        try:
            old = reader.manifest
            if old.embedder.name == embedder.name:
                return ReindexReport(backend.location, old.embedder.name, embedder.name, len(old.files), old.chunks,
                                     0, time.perf_counter() - started, False)
            writer = tx.begin(_fresh(old, embedder), fresh=True)
            embedded = _copy(reader, writer, embedder, settings, progress)
            for source, record in old.files.items():
                writer.finish_file(source, record)
            writer.draft.next_id = max(writer.draft.next_id, old.next_id)
            writer.draft.last_ingest = old.last_ingest
            tx.commit()
        finally:
            reader.close()
    return ReindexReport(backend.location, old.embedder.name, embedder.name, len(old.files), old.chunks, embedded,
                         time.perf_counter() - started, True)


def _copy(reader: Any, writer: Any, embedder: Embedder, settings: Settings,
          progress: Callable[[Progress], None] | None) -> int:
    """Every chunk embedded again (through the cache when it is on), and every page;
    returns how many vectors were computed."""
    cached = CachedEmbedder(embedder, cache_file(settings.cache_dir, embedder)) if settings.embed_cache else None
    model = cached or embedder
    done = 0
    try:
        for ids, chunks, _ in reader.export(_CHUNK_BATCH):
            vectors = model.embed([c.embed_text() for c in chunks], batch_size=settings.batch_size)
            writer.add_chunks(chunks, vectors, ids)
            done += len(ids)
            if progress:
                progress(Progress("embed", done, reader.size))
    finally:
        if cached is not None:
            cached.close()
    computed = done - (cached.hits if cached is not None else 0)
    buffer = []
    for page in reader.pages():
        buffer.append(page)
        if len(buffer) >= _PAGE_BATCH:
            writer.add_pages(buffer)
            buffer = []
    writer.add_pages(buffer)
    return computed
