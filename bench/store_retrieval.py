"""Retrieval quality and latency of the FAISS and Milvus stores on BEIR SciFact (train).

The FAISS index is built once (or reused) in the bench cache; the Milvus index is made
from it with `rag migrate`, so both hold the same chunk ids and vectors and differ only
in the engine that searches them: FAISS + SQLite FTS5 against Milvus (milvus-lite here)
vector search + Milvus BM25 over our Porter-stemmed terms. The reference measured in
the same run is the FAISS store.

    python bench/store_retrieval.py [--data ../shared/data/scifact-train] [--split train]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, machine  # noqa: E402
from rag import Settings  # noqa: E402
from rag.migrate import migrate  # noqa: E402
from rag.evaluate import evaluate  # noqa: E402
from rag.stores import backend_for  # noqa: E402

MODES = ("dense", "lexical", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "scifact-train"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--base", default=str(Path.home() / ".cache" / "rag" / "bench-scifact"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = Path(args.base)
    print(f"machine: {machine()}; data {args.data}, split {args.split}; index {base}")
    faiss = Settings.load({"index_dir": base / "index", "store": "faiss"})
    milvus = Settings.load({"index_dir": base / "index", "store": "milvus"})
    results = {"faiss": {m: evaluate(args.data, args.split, m, faiss, index_dir=base) for m in MODES}}
    t = time.perf_counter()
    report = migrate(faiss, "milvus", replace=backend_for(milvus).exists())
    print(f"rag migrate faiss -> milvus: {report.chunks} chunks, {report.pages} pages in {time.perf_counter() - t:.1f} s")
    results["milvus"] = {m: evaluate(args.data, args.split, m, milvus, index_dir=base) for m in MODES}
    print(f"{'mode':<8} {'store':<7} {'nDCG@10':>8} {'x faiss':>7} {'R@10':>6} {'R@100':>6} {'MRR@10':>7} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for mode in MODES:
        ref = results["faiss"][mode].metrics["ndcg@10"]
        for store in ("faiss", "milvus"):
            r = results[store][mode]
            m = r.metrics
            print(f"{mode:<8} {store:<7} {m['ndcg@10']:>8.4f} {m['ndcg@10'] / ref:>7.3f} {m['recall@10']:>6.3f} "
                  f"{m['recall@100']:>6.3f} {m['mrr@10']:>7.4f} {r.latency_ms['p50']:>7.1f} {r.latency_ms['p95']:>7.1f}")
    print(f"{results['faiss']['hybrid'].queries} queries; latency per query at the depth the metrics need "
          "(100 chunks), model loaded")


if __name__ == "__main__":
    main()
