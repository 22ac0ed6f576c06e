"""Question -> ranked hits: embed the query, search the vectors, fetch the chunk rows."""

from __future__ import annotations

from .embed import Embedder
from .store import Store
from .types import Hit


class Retriever:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def search(self, query: str, k: int) -> list[Hit]:
        """The k chunks most similar to `query`, best first (fewer if the index is smaller)."""
        if not query.strip():
            return []
        vector = self.embedder.embed([query])
        (ranked,) = self.store.search(vector, k)
        return self.store.hits(ranked)
