"""Vector search at scale: exact (flat) against the IVF index the store switches to.

Synthetic vectors stand in for chunks: 384 dimensions like all-MiniLM-L6-v2, drawn
around one centre per 100 vectors, the centres themselves around one topic per 1,000,
and normalised (real embeddings are clustered, and clusters overlap).
For each size the flat index is the reference, measured in the same run; the IVF index
is built by rag/stores/vector_index.py exactly as a commit would build it (cells, k-means,
nprobe calibrated to recall@10 >= 0.97 on queries near stored vectors). Recall@10 and
latency are then measured on other queries (stored vectors moved to a cosine of about
0.7, a different seed), one query at a time with k=10 as `rag search` asks.
Targets at 1M: recall@10 >= 0.95 and >= 10x lower latency than exact search.

First, real vectors: the SciFact train corpus (../shared/data) ingested with the default
embedder, searched with its 809 real queries; too small for IVF to pay off, but it
shows how real embeddings treat the calibration.

    python bench/scale.py [--sizes 100000,1000000] [--queries 300] [--no-scifact]
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
from rag.stores import vector_index as vi  # noqa: E402
from rag.stores.vector_index import load_faiss  # noqa: E402

DIM = 384
POINT_NOISE = 2.0
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(max(1, n // 1000), DIM)).astype(np.float32)  # topics of about 1,000 vectors
    centers = topics[rng.integers(0, len(topics), max(1, n // 100))] + rng.normal(size=(max(1, n // 100), DIM)).astype(np.float32)
    # Points far from their centre: a vector's nearest neighbour is at a cosine of about
    # 0.4 (printed), lower than in real embeddings, so cells overlap more than they would.
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):  # in blocks: the noise of 1M x 384 at once doubles the peak
        m = min(100_000, n - i)
        block = centers[rng.integers(0, len(centers), m)] + rng.normal(scale=POINT_NOISE, size=(m, DIM)).astype(np.float32)
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
    faiss = load_faiss()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path) / 1e6


def nn_cosine(index, x: np.ndarray) -> float:
    """Mean cosine between a stored vector and its nearest other stored vector (200 samples)."""
    scores, _ = index.search(x[:200], 2)
    return float(scores[:, 1].mean())


def rows_for(name: str, x: np.ndarray, queries: np.ndarray) -> None:
    n = len(x)
    ids = np.arange(n, dtype=np.int64)
    t = time.perf_counter()
    flat = vi.new_flat(x.shape[1])
    flat.add_with_ids(x, ids)
    flat_build = time.perf_counter() - t
    flat_ms = latency_ms(flat, queries)
    per_million = 1e6 / n
    print(f"| {name} ({n:,}, nearest neighbour at cos {nn_cosine(flat, x):.2f}) | flat, exact (reference) | "
          f"{flat_build:.1f} s | - | 1.000 | {flat_ms:.2f} ms | 1.0x | {disk_mb(flat) * per_million:,.0f} |", flush=True)
    for storage in vi.STORAGES:
        t = time.perf_counter()
        ivf, spec = vi.build_ivf(x, ids, storage, exact=flat)
        build = time.perf_counter() - t
        recall = vi.recall_at_10(ivf, flat, queries)
        ms = latency_ms(ivf, queries)
        print(f"| {name} ({n:,}) | IVF, {storage} | {build:.1f} s | {spec['nprobe']} / {spec['cells']} | {recall:.3f} | "
              f"{ms:.2f} ms | {flat_ms / ms:.1f}x faster | {disk_mb(ivf) * per_million:,.0f} |", flush=True)
        del ivf


def scifact() -> tuple[np.ndarray, np.ndarray]:
    """Real vectors: the SciFact train corpus ingested with the default embedder (its own
    index under the cache folder, reused), and its real queries embedded."""
    import json

    from rag import Settings, ingest
    from rag.evaluate import materialize
    from rag.index import Index

    base = Settings.load().cache_dir / "bench-scifact"
    materialize(SCIFACT, base / "docs")
    settings = Settings.load({"index_dir": base / "index"})
    ingest([base / "docs"], settings=settings)
    index = Index.open(settings=settings)
    store = index.store
    ids = sorted(store.chunk_rows(range(store.manifest.next_id)))
    x = store.vectors_of(ids)
    questions = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines() if line]
    return x, index.embedder.embed(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-scifact", action="store_true", help="skip the real-vector rows")
    args = parser.parse_args()
    faiss = load_faiss()
    print(f"{machine()}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; {DIM} dims")
    print("| vectors | index | build | nprobe / cells | recall@10 | query p50 (k=10) | vs exact | disk (MB per 1M vectors) |")
    print("|---|---|---|---|---|---|---|---|")
    if not args.no_scifact:
        x, questions = scifact()
        rows_for("SciFact chunks, real queries", x, questions)
    for n in (int(s) for s in args.sizes.split(",")):
        x = synthetic(n)
        rows_for("synthetic", x, vi.calibration_queries(x, args.queries, seed=12345))
        del x


if __name__ == "__main__":
    main()
