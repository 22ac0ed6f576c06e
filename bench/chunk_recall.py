"""Recall@k of the sample corpus question set for chunk size / overlap candidates.

For every answerable question in bench/corpus_questions.jsonl a hit counts when a chunk
among the top k comes from the right file (and page, for PDFs) and contains one of the
accepted answer strings. The reference is the naive pipeline the issue tracker names:
fixed 150-word windows without overlap, measured in the same run on the same embedder.
It also prints the top-1 similarity of answerable and unanswerable questions.

    python bench/chunk_recall.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import load_corpus, machine, questions  # noqa: E402
from rag.chunking import chunk_pages  # noqa: E402
from rag.embedders.torch import SentenceTransformerEmbedder  # noqa: E402
from rag.types import Chunk  # noqa: E402

KS = (1, 3, 5, 10)
CANDIDATES = [(96, 16), (128, 0), (128, 32), (160, 32), (192, 32), (254, 0), (254, 48)]


def word_windows(pages, size: int = 150) -> list[Chunk]:
    out = []
    for p in pages:
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", p.text)]
        for i in range(0, len(words), size):
            a, b = words[i][0], words[min(i + size, len(words)) - 1][1]
            out.append(Chunk(p.source, p.page, "", a, b, p.text[a:b], 0))
    return out


def norm(s: str) -> str:
    return " ".join(s.lower().split())


def evaluate(chunks: list[Chunk], embedder, qs: list[dict], qvecs: np.ndarray) -> tuple[dict[int, float], list[float]]:
    vecs = embedder.embed([c.embed_text() for c in chunks])
    scores = qvecs @ vecs.T
    found = {k: 0 for k in KS}
    answerable = [i for i, q in enumerate(qs) if q["answerable"]]
    for i in answerable:
        q = qs[i]
        order = np.argsort(-scores[i])[: max(KS)]
        good = [
            c.source == q["sources"][0]
            and (q["pages"][0] is None or c.page == q["pages"][0])
            and any(norm(a) in norm(c.text) for a in q["answers"])
            for c in (chunks[j] for j in order)
        ]
        for k in KS:
            found[k] += any(good[:k])
    top1 = scores.max(axis=1)
    return {k: found[k] / len(answerable) for k in KS}, top1.tolist()


def main() -> None:
    qs = questions()
    pages = load_corpus()
    embedder = SentenceTransformerEmbedder()
    qvecs = embedder.embed([q["question"] for q in qs])
    print(f"machine: {machine()}; {len(pages)} pages; {sum(q['answerable'] for q in qs)} answerable questions")
    t = time.perf_counter()
    base, _ = evaluate(word_windows(pages), embedder, qs, qvecs)
    print(f"reference: 150-word windows, no overlap ({time.perf_counter() - t:.1f} s)")
    print("  " + "  ".join(f"R@{k} {base[k]:.3f}" for k in KS))
    print(f"\n{'tokens':>6} {'overlap':>7} {'chunks':>6}  " + "  ".join(f"{'R@' + str(k):>6} {'x ref':>5}" for k in KS))
    best = None
    for size, overlap in CANDIDATES:
        chunks = chunk_pages(pages, embedder.count_tokens, min(size, embedder.max_tokens), overlap)
        recall, top1 = evaluate(chunks, embedder, qs, qvecs)
        print(f"{size:>6} {overlap:>7} {len(chunks):>6}  " + "  ".join(
            f"{recall[k]:>6.3f} {recall[k] / base[k]:>5.2f}" for k in KS))
        key = (recall[5], recall[10])
        if best is None or key > best[0] or (key == best[0] and size < best[1]):
            best = (key, size, overlap, top1)
    _, size, overlap, top1 = best
    print(f"\nbest by R@5 (k=5 is the default), then R@10, then the smaller chunk (fewer prompt tokens): {size} tokens, overlap {overlap}")
    ans = sorted(t for t, q in zip(top1, qs) if q["answerable"])
    una = sorted(t for t, q in zip(top1, qs) if not q["answerable"])
    pct = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    print(f"top-1 similarity, answerable:   min {ans[0]:.3f}  p10 {pct(ans, 0.1):.3f}  median {pct(ans, 0.5):.3f}")
    print(f"top-1 similarity, unanswerable: median {pct(una, 0.5):.3f}  p90 {pct(una, 0.9):.3f}  max {una[-1]:.3f}")
    for floor in (0.25, 0.30, 0.35):
        print(f"  min_score {floor:.2f}: abstains on {sum(t < floor for t in una)}/{len(una)} unanswerable, "
              f"{sum(t < floor for t in ans)}/{len(ans)} answerable")


if __name__ == "__main__":
    main()
