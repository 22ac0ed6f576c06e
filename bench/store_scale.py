"""Ingest and query latency of the two store backends at 100k and 1M chunks, side by side.

Synthetic chunks stand in for a corpus: the clustered 384-dim vectors of bench/scale.py,
20-word texts drawn from a 20,000-word Zipf vocabulary (so BM25 has common and rare
terms), 100 chunks per file and one page per file. Each backend gets the same data
through its own writer, exactly as an ingest stores it (the embedder is left out: it
costs the same on both), then answers the same queries one at a time with k=10:

- dense: the store's vector search (FAISS flat below 200k chunks, IVF above; Milvus
  AUTOINDEX, which is HNSW on milvus-lite), with recall@10 against exact search;
- lexical: BM25 (SQLite FTS5 against Milvus BM25) on three words of a stored chunk;
- hybrid: the retriever's fused search, as `rag search` runs it;
- filtered: dense search restricted to one file type (`--where type=md`).

The reference, measured in the same run, is the FAISS store. Here Milvus is milvus-lite,
the in-process engine the tests use; a Milvus server or cluster has other figures.

    python bench/store_scale.py [--sizes 100000,1000000] [--queries 200] [--stores faiss,milvus]
                                [--milvus-uri http://HOST:19530] [--lite-max 200000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine  # noqa: E402
from bench.scale import DIM, synthetic  # noqa: E402
from rag.stores import vector_index  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.types import Where  # noqa: E402
from rag.manifest import Chunking, EmbedderInfo, FileRecord, new_manifest, now_iso  # noqa: E402
from rag.stores import backend_for  # noqa: E402
from rag.types import Chunk, Page  # noqa: E402

PER_FILE = 100
BATCH = 1000
VOCABULARY = 20_000


def texts(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.2, size=(n, 20)), VOCABULARY) - 1
    return [" ".join(f"w{r}" for r in row) for row in ranks]


def source(i: int) -> str:
    return f"docs/file{i // PER_FILE:06d}." + ("md" if (i // PER_FILE) % 4 == 0 else "txt")


def rss_gb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1e6


def _watch(store: str, n: int, stored: list[int], started: float, limit: float) -> None:
    """Stop the benchmark (it is the last backend measured at the largest size, or the
    machine is about to swap) once the process passes `limit` GB while building."""
    while stored[0] < n:
        rss = rss_gb()
        if rss > limit:
            seconds = time.perf_counter() - started
            print(f"{n:>9} {store:<7} did not fit: stopped after {stored[0]} chunks stored in {seconds:.0f} s "
                  f"({stored[0] / seconds:.0f} chunks/s) with the process at {rss:.1f} GB", flush=True)
            os._exit(3)
        time.sleep(0.2)


def build(store: str, folder: Path, vectors: np.ndarray, words: list[str], rss_limit: float,
          milvus_uri: str | None = None) -> tuple[float, Settings]:
    settings = Settings.load({"index_dir": folder / "index", "store": store,
                              "milvus_uri": milvus_uri or str(folder / "m.db"), "milvus_collection": "bench_scale"})
    backend = backend_for(settings)
    manifest = new_manifest(EmbedderInfo("synthetic", DIM, 256), Chunking("synthetic", 256, 0))
    started = time.perf_counter()
    stored = [0]
    threading.Thread(target=_watch, args=(store, len(vectors), stored, started, rss_limit), daemon=True).start()
    with backend.write_lock():
        writer = backend.writer(manifest, fresh=True)
        n = len(vectors)
        for a in range(0, n, BATCH):
            b = min(n, a + BATCH)
            chunks = [Chunk(source=source(i), page=None, heading="", start=0, end=len(words[i]), text=words[i],
                            tokens=20) for i in range(a, b)]
            writer.add_chunks(chunks, vectors[a:b])
            files = sorted({c.source for c in chunks})
            writer.add_pages([Page(source=f, page=None, text=f, kind="text") for f in files])
            for f in files:
                writer.finish_file(f, FileRecord("0" * 64, sum(c.source == f for c in chunks), 1, 0, "", now_iso()))
            stored[0] = b
        writer.commit()
    return time.perf_counter() - started, settings


class Lookup:
    """An embedder that knows the query vectors in advance (the model is not what is measured)."""

    name, dim, max_tokens = "synthetic", DIM, 256

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed(self, batch, batch_size=32, progress=None):  # noqa: ANN001
        return np.vstack([self.table[t] for t in batch])


def timed(fn, items) -> tuple[float, float, list]:  # noqa: ANN001
    times, out = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], out


def measure(settings: Settings, queries: np.ndarray, qtexts: list[str], exact: np.ndarray) -> dict[str, float]:
    store = backend_for(settings).open()
    try:
        retriever = Retriever(store, Lookup(dict(zip(qtexts, queries))))
        dense_p50, dense_p95, got = timed(lambda q: store.search(q[None, :], 10)[0], queries)
        recall = float(np.mean([len({i for i, _ in g} & set(e)) / 10 for g, e in zip(got, exact)]))
        lex_p50, lex_p95, _ = timed(lambda t: store.lexical_search(t, 10), qtexts)
        hyb_p50, hyb_p95, _ = timed(lambda t: retriever.search(t, 10, "hybrid"), qtexts)
        md = Where(types=("md",))
        fil_p50, fil_p95, hits = timed(lambda t: retriever.search(t, 10, "dense", where=md), qtexts)
        assert all(h.source.endswith(".md") for run in hits for h in run)
        return {"dense_p50": dense_p50, "dense_p95": dense_p95, "recall": recall, "lexical_p50": lex_p50,
                "lexical_p95": lex_p95, "hybrid_p50": hyb_p50, "hybrid_p95": hyb_p95, "filtered_p50": fil_p50,
                "filtered_p95": fil_p95}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stores", default="faiss,milvus")
    parser.add_argument("--rss-limit-gb", type=float, default=16.0)
    parser.add_argument("--milvus-uri", default=None,
                        help="a Milvus server to measure (collections bench_scale_*); default: milvus-lite")
    # milvus-lite grew past 21 GB of this machine's 24 GB at about 200k synthetic chunks,
    # twice, in its own flush (too fast for the RSS watch to stop it): not run above this.
    parser.add_argument("--lite-max", type=int, default=200_000)
    args = parser.parse_args()
    stores = args.stores.split(",")
    print(f"machine: {machine()}; {DIM} dims, {args.queries} queries per figure, k=10")
    print(f"{'chunks':>9} {'store':<7} {'ingest s':>9} {'chunks/s':>9} {'+RSS GB':>7} {'dense p50/p95 ms':>17} "
          f"{'R@10':>6} {'lexical p50/p95':>16} {'hybrid p50/p95':>15} {'filtered p50/p95':>17}", flush=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        vectors = synthetic(n)
        words = texts(n)
        qpick = np.random.default_rng(7).choice(n, args.queries, replace=False)
        queries = vector_index.calibration_queries(vectors, args.queries, seed=7)
        qtexts = [" ".join(words[i].split()[:3]) + f" #{j}" for j, i in enumerate(qpick)]
        exact = [np.argsort(-(vectors @ q))[:10] for q in queries]
        for store in stores:
            if store == "milvus" and not args.milvus_uri and n > args.lite_max:
                print(f"{n:>9} milvus  not run on milvus-lite above {args.lite_max} chunks (--lite-max): it outgrows "
                      "this machine's memory; measure a Milvus server with --milvus-uri http://HOST:19530", flush=True)
                continue
            before = rss_gb()
            with tempfile.TemporaryDirectory(prefix=f"store-scale-{store}-") as tmp:
                seconds, settings = build(store, Path(tmp), vectors, words, args.rss_limit_gb, args.milvus_uri)
                grown = rss_gb() - before
                f = measure(settings, queries, qtexts, exact)
            rows.append((n, store, seconds, f))
            print(f"{n:>9} {store:<7} {seconds:>9.1f} {n / seconds:>9.0f} {grown:>7.1f} "
                  f"{f['dense_p50']:>8.2f}/{f['dense_p95']:<8.2f} {f['recall']:>6.3f} "
                  f"{f['lexical_p50']:>7.2f}/{f['lexical_p95']:<8.2f} {f['hybrid_p50']:>7.1f}/{f['hybrid_p95']:<7.1f} "
                  f"{f['filtered_p50']:>8.1f}/{f['filtered_p95']:<8.1f}", flush=True)
            base = next((r for r in rows if r[0] == n and r[1] == "faiss"), None)
            if store != "faiss" and base:
                b = base[3]
                print(f"{n:>9} {store} / faiss: ingest time {seconds / base[2]:.1f}x, dense p50 "
                      f"{f['dense_p50'] / b['dense_p50']:.1f}x, lexical p50 {f['lexical_p50'] / b['lexical_p50']:.1f}x, "
                      f"hybrid p50 {f['hybrid_p50'] / b['hybrid_p50']:.1f}x, filtered p50 "
                      f"{f['filtered_p50'] / b['filtered_p50']:.1f}x", flush=True)


if __name__ == "__main__":
    main()
