"""Vector search at scale: exact (flat) against the IVF index the store switches to.

Synthetic vectors stand in for chunks: 384 dimensions like all-MiniLM-L6-v2, drawn
around one centre per 100 vectors, the centres themselves around one topic per 1,000,
and normalised (real embeddings are clustered, and clusters overlap).
For each size the flat index is the reference, measured in the same run; the IVF index
is built by rag/vector_index.py exactly as a commit would build it (cells, k-means,
nprobe calibrated to recall@10 >= 0.97 on queries near stored vectors). Recall@10 and
latency are then measured on other queries (stored vectors moved to a cosine of about
0.7, a different seed), one query at a time with k=10 as `rag search` asks.
Targets at 1M: recall@10 >= 0.95 and >= 10x lower latency than exact search.

    python bench/scale.py [--sizes 100000,1000000] [--queries 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine  # noqa: E402
from rag import vector_index as vi  # noqa: E402
from rag.store import _faiss  # noqa: E402

DIM = 384


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(max(1, n // 1000), DIM)).astype(np.float32)  # topics of about 1,000 vectors
    centers = topics[rng.integers(0, len(topics), max(1, n // 100))] + rng.normal(size=(max(1, n // 100), DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):  # in blocks: the noise of 1M x 384 at once doubles the peak
        m = min(100_000, n - i)
        block = centers[rng.integers(0, len(centers), m)] + rng.normal(scale=0.8, size=(m, DIM)).astype(np.float32)
        out[i:i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latency_ms(index, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], 10)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def disk_mb(index) -> float:
    faiss = _faiss()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    faiss = _faiss()
    print(f"{machine()}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; {DIM} dims")
    print("| vectors | index | build | nprobe / cells | recall@10 | query p50 (k=10) | vs exact | disk (MB per 1M vectors) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        x = synthetic(n)
        ids = np.arange(n, dtype=np.int64)
        queries = vi.calibration_queries(x, args.queries, seed=12345)
        t = time.perf_counter()
        flat = vi.new_flat(DIM)
        flat.add_with_ids(x, ids)
        flat_build = time.perf_counter() - t
        flat_ms = latency_ms(flat, queries)
        per_million = 1e6 / n
        print(f"| {n:,} | flat, exact (reference) | {flat_build:.1f} s | - | 1.000 | {flat_ms:.2f} ms | 1.0x | "
              f"{disk_mb(flat) * per_million:,.0f} |", flush=True)
        for storage in vi.STORAGES:
            t = time.perf_counter()
            ivf, spec = vi.build_ivf(x, ids, storage, exact=flat)
            build = time.perf_counter() - t
            recall = vi.recall_at_10(ivf, flat, queries)
            ms = latency_ms(ivf, queries)
            print(f"| {n:,} | IVF, {storage} | {build:.1f} s | {spec['nprobe']} / {spec['cells']} | {recall:.3f} | "
                  f"{ms:.2f} ms | {flat_ms / ms:.1f}x faster | {disk_mb(ivf) * per_million:,.0f} |", flush=True)
            del ivf
        del flat, x


if __name__ == "__main__":
    main()
