"""What an index holds, as plain data, to compare an index kept up to date with one
built afresh (the watcher tests and the identity tests)."""

from __future__ import annotations

from rag.config import Settings
from rag.stores import backend_for


def index_state(s: Settings) -> dict[str, tuple]:
    """Per recorded name: where the file came from, its hash, and its chunks (page, span,
    heading, text) in order. Ingest times and chunk ids are left out: they differ."""
    backend = backend_for(s)
    if not backend.exists():
        return {}
    store = backend.open()
    try:
        chunks: dict[str, list[tuple]] = {}
        for _, batch, _ in store.export():
            for c in batch:
                chunks.setdefault(c.source, []).append((c.page, c.start, c.end, c.heading, c.text))
        return {source: (r.root, r.identity(source)[1], r.sha256, r.chunks, tuple(sorted(chunks.get(source, []))))
                for source, r in store.files().items()}
    finally:
        store.close()
