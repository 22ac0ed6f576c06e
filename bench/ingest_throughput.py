"""Ingest throughput: chunks embedded per second by the whole pipeline, model load excluded.

A temporary folder holds the first 700 SciFact abstracts (title, blank line, abstract),
one .txt file each: about 2,000 chunks at the default settings. `ingest()` runs on it
with the real default embedder (all-MiniLM-L6-v2), built once before any timing and
passed in with `embedder=`, into a fresh temporary index each time; its wall time covers
discovery, hashing, loading, chunking (tokenizer counts), embedding and the store.

The pipeline embeds with the default runtime (ONNX Runtime, rag/embedders/onnx.py) and no
embedding cache (every chunk is embedded). The reference, in the same run, is the model
alone: `SentenceTransformer.encode` (torch) on exactly the texts the pipeline embedded
(Chunk.embed_text() of every chunk in the index's chunks.sqlite), batch_size 32,
normalize_embeddings=True. Pipeline and reference alternate, twice each, and the best
of each is reported. Target: pipeline >= 0.90x the reference (PASS/FAIL is printed;
the exit code is 0).

The int8 variant (rag/embedders/quantize.py) runs the same pipeline in the same run,
alternating with fp32 ONNX: target, int8 ingest >= 2.5x the raw fp32 encode; and its
ratio to the fp32 pipeline.

It also prints the fp32 compute limit: the machine's matrix-multiply rate (numpy
float32 matmul, measured in the same run) divided by the model's FLOPs per chunk
(2 x weights per token for the six layers' matrices, plus attention's 4 x tokens x
width per token and layer), and the pipeline's share of that limit.

    python bench/ingest_throughput.py [--docs 700] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine  # noqa: E402
from rag.stores import faiss as store_mod  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedders import make_embedder  # noqa: E402
from rag.embedders.torch import SentenceTransformerEmbedder  # noqa: E402
from rag.ingestion import ingest  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train" / "corpus.jsonl"
TARGET = 0.90


def write_docs(folder: Path, n: int) -> int:
    """The first n SciFact abstracts, one .txt file each; returns the bytes written."""
    total = 0
    with open(SCIFACT, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            doc = json.loads(line)
            text = f"{doc['title']}\n\n{doc['text']}\n"
            (folder / f"scifact-{doc['_id']}.txt").write_text(text, encoding="utf-8")
            total += len(text.encode("utf-8"))
    return total


def embed_texts(index_dir: Path) -> list[str]:
    """What the pipeline embedded, in chunk id order: heading + "\\n" + text when a heading exists."""
    db = sqlite3.connect(store_mod.live_generation(index_dir) / store_mod.CHUNKS_DB)
    try:
        rows = db.execute("SELECT heading, text FROM chunks ORDER BY id").fetchall()
    finally:
        db.close()
    return [f"{h}\n{t}" if h else t for h, t in rows]


def run_pipeline(docs: Path, index_dir: Path, embedder, workers: int = 0) -> tuple[float, int]:
    # the defaults, untouched by rag.toml / RAG_* variables; no cache, so every chunk is embedded
    settings = Settings(index_dir=index_dir, embed_cache=False, workers=workers)
    t = time.perf_counter()
    report = ingest([docs], settings=settings, embedder=embedder)
    seconds = time.perf_counter() - t
    if report.failed:
        raise SystemExit(f"ingest failed on {len(report.failed)} files: {report.failed[:3]}")
    return seconds, report.chunks_embedded


def run_reference(texts: list[str], model) -> float:
    t = time.perf_counter()
    vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    seconds = time.perf_counter() - t
    assert vecs.shape[0] == len(texts)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=700, help="SciFact abstracts to ingest (default 700)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side (default 2)")
    parser.add_argument("--workers", type=int, default=0, help="ingest --workers for the pipeline runs (default 0)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-throughput-"))
    try:
        docs = tmp / "docs"
        docs.mkdir()
        size = write_docs(docs, args.docs)
        t = time.perf_counter()
        embedders = {v: make_embedder(Settings(embed_variant=v)) for v in VARIANTS}
        load = time.perf_counter() - t
        model = SentenceTransformerEmbedder()._model
        for e in embedders.values():
            e.embed(["warm-up"] * 4)
        model.encode(["warm-up"] * 4, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        print(f"machine: {machine()}; torch threads {_torch_threads()}; pipeline embedder "
              f"{type(embedders['fp32']).__name__} fp32 and int8")
        print(f"workers: {args.workers}")
        print(f"input: {args.docs} SciFact abstracts, {size / 1e6:.2f} MB; model load {load:.1f} s (not timed below)")
        pipe, ref, texts = _alternate(tmp, docs, embedders, model, args)
        report(pipe, ref, texts, embedders["fp32"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


VARIANTS = ("fp32", "int8")
TARGET_INT8 = 2.5  # whole-process ingest with int8 against raw fp32 SentenceTransformer.encode


def _alternate(tmp: Path, docs: Path, embedders: dict, model, args) -> tuple[dict, list, list]:
    """Pipeline runs with each variant and raw encode runs, alternating; seconds of each."""
    pipe: dict[str, list[float]] = {v: [] for v in embedders}
    ref: list[float] = []
    texts: list[str] = []
    for r in range(args.repeats):
        for variant, embedder in embedders.items():
            index_dir = tmp / f"index-{variant}-{r}"
            seconds, chunks = run_pipeline(docs, index_dir, embedder, args.workers)
            pipe[variant].append(seconds)
            if not texts:
                texts = embed_texts(index_dir)
                if len(texts) != chunks:
                    raise SystemExit(f"index holds {len(texts)} chunks but ingest reported {chunks} embedded")
            shutil.rmtree(index_dir)
            print(f"  run {r + 1}: pipeline ingest() {variant} {seconds:6.1f} s = {chunks / seconds:6.1f} chunks/s",
                  flush=True)
        seconds = run_reference(texts, model)
        ref.append(seconds)
        print(f"  run {r + 1}: raw encode fp32      {seconds:6.1f} s = {len(texts) / seconds:6.1f} chunks/s", flush=True)
    return pipe, ref, texts


def report(pipe: dict, ref: list, texts: list[str], embedder) -> None:
    chunks = len(texts)
    tokens = embedder.count_tokens(texts)
    print(f"chunks: {chunks} (mean {sum(tokens) / len(tokens):.0f} word pieces, max {max(tokens)})")
    best = {v: chunks / min(runs) for v, runs in pipe.items()}
    best_ref = chunks / min(ref)
    for v, rate in best.items():
        print(f"pipeline ingest() {v}:          {rate:6.1f} chunks/s (best of {len(pipe[v])})")
    print(f"reference SentenceTransformer: {best_ref:6.1f} chunks/s (best of {len(ref)})")
    ratio = best["fp32"] / best_ref
    print(f"ratio pipeline fp32/raw: {ratio:.3f}  target >= {TARGET:.2f}: {'PASS' if ratio >= TARGET else 'FAIL'}")
    int8 = best["int8"] / best_ref
    print(f"ratio pipeline int8/raw fp32: {int8:.3f}  target >= {TARGET_INT8:.2f}: "
          f"{'PASS' if int8 >= TARGET_INT8 else 'FAIL'}")
    print(f"ratio int8/fp32 ONNX (both whole pipeline): {best['int8'] / best['fp32']:.3f}")
    gflops = matmul_gflops()
    per_chunk = sum(model_flops(n + 2) for n in tokens) / len(tokens)  # + [CLS], [SEP]
    limit = gflops * 1e9 / per_chunk
    print(f"fp32 compute limit: {gflops:.0f} GFLOP/s matmul / {per_chunk / 1e9:.2f} GFLOP per chunk = "
          f"{limit:.1f} chunks/s; pipeline fp32 reaches {best['fp32'] / limit:.2f} of it")


def model_flops(tokens: int, layers: int = 6, width: int = 384, ffn: int = 1536) -> float:
    """Multiply-adds x 2 of one all-MiniLM-L6-v2 forward pass over `tokens` tokens."""
    dense = layers * (4 * width * width + 2 * width * ffn)  # Q, K, V, output; two FFN matrices
    attention = layers * 2 * tokens * width  # scores and weighted sum, per token
    return 2.0 * tokens * (dense + attention)


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """The best rate of numpy float32 matrix multiplication over a few seconds."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t) / 1e9)
    return best


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
