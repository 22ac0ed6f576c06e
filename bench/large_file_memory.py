"""Peak memory and time of ingesting one large plain-text file.

A temporary folder gets one generated .txt file of prose-like text (paragraphs of 2-7
sentences of 5-24 words drawn, Zipf-like, from a fixed pseudo-word vocabulary; fixed
seed, so the same bytes every run). A child process runs `ingest()` on it with the
default settings and a fake embedder defined here (vectors from SHAKE-128 of each text,
384 dims; a word counts as one token), so what is measured is the pipeline's own
memory and time (loading, chunking, storing), not the model's. The child's peak RSS
comes from os.wait4 (ru_maxrss, KiB on Linux: the same figure as
getrusage(RUSAGE_CHILDREN), but for that one child alone).

The reference, in the same run, is a child that only reads the same file fully into
memory with Path.read_text (a bare interpreter, nothing imported). For scale it also
prints the floor (a child that only imports rag.ingestion and faiss), a child that only
fills a flat FAISS index with as many vectors as the ingest made, and the same
measurements for a 20 MB file, to show how memory grows with the file's size. Note
what a flat index implies: every vector (384 float32 = 1.5 KiB per chunk) is held in
memory until the index is written, and FAISS grows that buffer as a std::vector, so
while it is copied to a larger one both exist; the attribution line's peak moves with
where the chunk count falls against those doublings, so read it as approximate.

    python bench/large_file_memory.py [--mb 200] [--small-mb 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402

SEED = 20240601
DIM = 384


class HashEmbedder:
    """Deterministic and fast: a text's vector is SHAKE-128 of its bytes, centred and normalised."""

    name = "bench-fake-shake128"
    dim = DIM
    max_tokens = 254  # what all-MiniLM-L6-v2 leaves for text (256 minus [CLS] and [SEP])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        raw = b"".join(hashlib.shake_128(t.encode("utf-8")).digest(DIM) for t in texts)
        vecs = np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), DIM).astype(np.float32) - 127.5
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return vecs


def vocabulary(rng: np.random.Generator, size: int = 4000) -> tuple[list[str], np.ndarray]:
    onsets = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl", "ch", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ea", "io", "ou"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 5))
        words.add("".join(
            onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + codas[rng.integers(len(codas))]
            for _ in range(n)
        ))
    vocab = sorted(words, key=lambda w: (len(w), w))  # short words most frequent, as in prose
    weights = 1.0 / np.arange(1, size + 1)
    return vocab, weights / weights.sum()


def write_prose(path: Path, megabytes: float) -> int:
    """Write about `megabytes` MB of generated prose; returns the exact size in bytes."""
    rng = np.random.default_rng(SEED)
    vocab, p = vocabulary(rng)
    target = int(megabytes * 1_000_000)
    written = 0
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        while written < target:
            words = rng.choice(len(vocab), size=200_000, p=p)
            lengths = rng.integers(5, 25, size=len(words) // 5)
            paras = rng.integers(2, 8, size=len(lengths))
            out: list[str] = []
            pos = para_left = 0
            for n, k in zip(lengths, paras):
                if pos + n > len(words):
                    break
                sentence = [vocab[i] for i in words[pos : pos + n]]
                pos += n
                sentence[0] = sentence[0].capitalize()
                out.append(" ".join(sentence) + ".")
                if para_left == 0:
                    para_left = int(k)
                para_left -= 1
                out.append("\n\n" if para_left == 0 else " ")
            block = "".join(out)
            if written + len(block) > target:
                cut = block.rfind("\n\n", 0, target - written)
                block = block[: cut + 2] if cut > 0 else block[: target - written]
            fh.write(block)
            written += len(block)
    return path.stat().st_size


def child(args: list[str]) -> None:
    """Entry of the measured child processes; prints one JSON line."""
    mode = args[0]
    if mode == "floor":
        import faiss  # noqa: F401

        import rag.ingestion  # noqa: F401

        print(json.dumps({}))
    elif mode == "faiss":  # the flat index alone, filled as the pipeline fills it
        import faiss

        import rag.ingestion  # noqa: F401  (same imports as the ingest child)

        n, batch = int(args[1]), int(args[2])
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        vecs = np.random.default_rng(SEED).standard_normal((batch, DIM), dtype=np.float32)
        for first in range(0, n, batch):
            k = min(batch, n - first)
            index.add_with_ids(vecs[:k], np.arange(first, first + k, dtype=np.int64))
        print(json.dumps({"vectors": int(index.ntotal)}))
    elif mode == "ingest":
        from rag.config import Settings
        from rag.ingestion import ingest

        report = ingest([args[1]], settings=Settings(index_dir=Path(args[2])), embedder=HashEmbedder())
        print(json.dumps({"chunks": report.chunks_embedded, "seconds": report.seconds, "failed": len(report.failed)}))


# The reference child: a bare interpreter that reads the file, nothing imported.
READ_ONLY = "import json, sys; from pathlib import Path; print(json.dumps({'chars': len(Path(sys.argv[1]).read_text(encoding='utf-8'))}))"


def measure(*args: str) -> tuple[int, float, dict]:
    """Run a child in the given mode: (peak RSS KiB, wall seconds, its JSON line)."""
    if args[0] == "read":
        cmd = [sys.executable, "-c", READ_ONLY, *args[1:]]
    else:
        cmd = [sys.executable, __file__, "--child", *args]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} exited {proc.returncode}")
    return usage.ru_maxrss, seconds, json.loads(out)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(tmp: Path, megabytes: float) -> None:
    folder = tmp / f"docs-{megabytes:g}mb"
    folder.mkdir()
    path = folder / "big.txt"
    t = time.perf_counter()
    size = write_prose(path, megabytes)
    print(f"\n{size / 1e6:.1f} MB file (written in {time.perf_counter() - t:.1f} s)")
    read_rss, read_s, _ = measure("read", str(path))
    index_dir = tmp / f"index-{megabytes:g}mb"
    rss, seconds, info = measure("ingest", str(folder), str(index_dir))
    if info["failed"]:
        print(f"  note: ingest reported {info['failed']} failed file(s)")
    print(f"  reference read_text:  peak RSS {read_rss / 1024:7.0f} MiB  {read_s:6.1f} s")
    print(f"  ingest (fake embed):  peak RSS {rss / 1024:7.0f} MiB  {seconds:6.1f} s wall "
          f"({info['seconds']:.1f} s in ingest(); {info['chunks']} chunks, {info['chunks'] / info['seconds']:.0f} chunks/s, "
          f"{size / 1e6 / seconds:.2f} MB/s; index {du(index_dir) / 1e6:.0f} MB on disk)")
    print(f"  ratio ingest/read_text peak RSS: {rss / read_rss:.2f}")
    # Text files this large come in segments of about SEGMENT_BYTES, each flushed as one batch.
    from rag.loaders import SEGMENT_BYTES

    batch = max(1, round(info["chunks"] / max(1.0, size / SEGMENT_BYTES)))
    faiss_rss, _, _ = measure("faiss", str(info["chunks"]), str(batch))
    print(f"  for attribution: the same {info['chunks']} vectors ({info['chunks'] * DIM * 4 / 2**20:.0f} MiB of float32), "
          f"added {batch} at a time to IndexIDMap2(IndexFlatIP) alone, peak at {faiss_rss / 1024:.0f} MiB RSS (floor included)")
    shutil.rmtree(folder)
    shutil.rmtree(index_dir)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=200, help="size of the large file in MB (default 200)")
    parser.add_argument("--small-mb", type=float, default=20, help="size of the comparison file in MB (default 20)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-memory-"))
    try:
        floor, _, _ = measure("floor")
        print(f"machine: {machine()}")
        print(f"floor: a child importing rag.ingestion and faiss peaks at {floor / 1024:.0f} MiB RSS")
        for mb in sorted({args.small_mb, args.mb}):
            run(tmp, mb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
