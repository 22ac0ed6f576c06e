"""Question -> ranked hits: dense (FAISS), lexical (SQLite FTS5 BM25) or both fused.

Hybrid mode fuses the two rankings. The default, "convex", rescales each list's scores
to 0..1 (min-max over its top FUSION_DEPTH) and adds them with equal weight; "rrf"
(reciprocal rank fusion) scores sum(1 / (rrf_k + rank)) instead. On SciFact train
(809 queries) convex fusion gave nDCG@10 0.736 against 0.719 for RRF with k=60 and 0.682
for either list alone (bench/retrieval_modes.py). Filters (`Where`) drop hits by source glob or file
type, fetching deeper until k survive. Hits that repeat most of a better hit's span
(chunk overlap) are dropped so they do not crowd the top k.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .embedders import Embedder
from .errors import ConfigError
from .stores import Store
from .types import Hit, Where

MODES = ("dense", "lexical", "hybrid")
FUSIONS = ("convex", "rrf")
# Both lists are always fetched this deep for fusion, so a score's rescaling does not
# depend on k; with 300 it measured 0.736, with 50 0.732.
FUSION_DEPTH = 200


def rrf(rankings: Sequence[Sequence[tuple[int, float]]], k: int = 60) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def convex(rankings: Sequence[Sequence[tuple[int, float]]], depth: int = FUSION_DEPTH) -> list[tuple[int, float]]:
    """Equal-weight sum of min-max rescaled scores (the minimum taken at `depth`)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        if not ranking:
            continue
        hi, lo = ranking[0][1], ranking[min(len(ranking), depth) - 1][1]
        span = (hi - lo) or 1.0
        for cid, score in ranking:
            scores[cid] = scores.get(cid, 0.0) + max(0.0, (score - lo) / span) / len(rankings)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _overlaps(a: Hit, b: Hit) -> bool:
    """Whether b repeats more than half of a's span (same page of the same file)."""
    if a.source != b.source or a.page != b.page:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > 0.5 * min(a.end - a.start, b.end - b.start)


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, rrf_k: int = 60, fusion: str = "convex") -> None:
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
        self.store = store
        self.embedder = embedder
        self.rrf_k = rrf_k
        self.fusion = fusion

    def search(
        self, query: str, k: int, mode: str = "hybrid", where: Where | None = None, qvec: np.ndarray | None = None
    ) -> list[Hit]:
        """The k best chunks for `query`, best first (fewer if the index has fewer);
        `qvec` is the query's embedding when the caller already has it."""
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        self.store.refresh()  # a store shared with writers (Milvus) moves to the latest commit
        if not query.strip() or self.store.size == 0:
            return []
        qvec = self.embedder.embed([query]) if qvec is None else qvec
        depth = max(4 * k, 50)
        while True:
            hits = self._ranked(query, qvec, mode, depth, where)
            kept: list[Hit] = []
            by_page: dict[tuple[str, int | None], list[Hit]] = {}
            for hit in hits:
                if where and not where.accepts(hit.source):
                    continue
                same_page = by_page.setdefault((hit.source, hit.page), [])
                if any(_overlaps(better, hit) for better in same_page):
                    continue
                same_page.append(hit)
                kept.append(hit)
            if len(kept) >= k or depth >= self.store.size:
                break
            depth *= 4
        kept = kept[:k]
        sims = self.store.vectors_of([h.chunk_id for h in kept]) @ qvec[0] if kept else np.zeros(0)
        return [replace(h, rank=i, similarity=float(s)) for i, (h, s) in enumerate(zip(kept, sims), start=1)]

    def pool(self, query: str, hits: Sequence[Hit], k: int = 5, where: Where | None = None) -> list[Hit]:
        """The hits, then the top k of the dense and of the lexical ranking that are not
        among them (nor repeat one's span): the passages worth reading, since each ranking
        is sometimes the only one that finds the answer ("What is a <term>?" is dense rank 1
        and fused rank 11 when other chunks repeat the term)."""
        out = list(hits)
        qvec = self.embedder.embed([query])  # once for both rankings
        for mode in ("dense", "lexical"):
            for hit in self.search(query, k, mode, where, qvec):
                if all(h.chunk_id != hit.chunk_id and not _overlaps(h, hit) for h in out):
                    out.append(replace(hit, rank=len(out) + 1))
        return out

    def _ranked(self, query: str, qvec: np.ndarray, mode: str, depth: int, where: Where | None) -> list[Hit]:
        fetch = max(depth, FUSION_DEPTH) if mode == "hybrid" else depth
        dense = self.store.search(qvec, fetch, where)[0] if mode != "lexical" else []
        lexical = self.store.lexical_search(query, fetch, where) if mode != "dense" else []
        if mode == "dense":
            ranked = dense
        elif mode == "lexical":
            ranked = lexical
        elif self.fusion == "rrf":
            ranked = rrf([dense, lexical], self.rrf_k)
        else:
            ranked = convex([dense, lexical])
        return self.store.hits(ranked[:depth])
