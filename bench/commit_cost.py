"""What a FAISS commit costs as the index grows: add one small file to indexes of 1k,
100k and 1M chunks.

Each index is synthetic (random 384-d unit vectors stored as float16, texts of 60 words
drawn from a 5,000-word vocabulary, 100 chunks per file, one page per file) and built
once through FaissWriter, then kept under --cache (default ~/.cache/rag-bench/commit_cost)
for later runs; the 1M build takes a few minutes and about 3 GB of disk. The measured
operation is the store's write path that `rag ingest` of one new note ends in: a writer
on the live generation, add_file (5 chunks), commit (fsyncs, the CURRENT flip, the
sweep). Figures: median seconds of REPEATS adds, the bytes passed to write(2) during the
add (wchar of /proc/self/io: SQLite, FAISS and the manifest), the bytes the new
generation does not share with the old one (new files; hard links excluded), and
whether the commit wrote a delta or compacted (an index under COMPACT_BELOW chunks is
always compacted: a full copy of it is cheaper than bookkeeping). Each add is removed
again by a second commit, so reruns measure the same index. Target: the 1M case at most
2x the 1k case, in seconds and in bytes written.

    python bench/commit_cost.py [--sizes 1000,100000,1000000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine  # noqa: E402
from rag.manifest import Chunking, EmbedderInfo, FileRecord, Manifest, now_iso  # noqa: E402
from rag.stores import faiss_segments  # noqa: E402
from rag.stores.faiss import FaissStore, FaissWriter, live_generation, read_manifest  # noqa: E402
from rag.types import Chunk, Page  # noqa: E402

DIM = 384
PER_FILE = 100
REPEATS = 3
TARGET = 2.0
POLICY = {"storage": "float16", "ann_from": 10_000_000}  # flat: the build stays bounded in time
VOCAB = [f"w{i:04d}" for i in range(5000)]


def _batch(rng: np.random.Generator, source: str, n: int) -> tuple[list[Chunk], np.ndarray, Page]:
    words = rng.choice(len(VOCAB), size=(n, 60))
    texts = [" ".join(VOCAB[w] for w in row) for row in words]
    chunks, start = [], 0
    for text in texts:
        chunks.append(Chunk(source, None, "", start, start + len(text), text, 60))
        start += len(text) + 1
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return chunks, vecs, Page(source, None, "\n".join(texts), "text")


def build(index_dir: Path, size: int) -> None:
    """A synthetic index of `size` chunks, written by the product's writer in one commit."""
    rng = np.random.default_rng(size)
    manifest = Manifest(EmbedderInfo("bench/synthetic", DIM, 256), Chunking("bench", 256, 32))
    writer = FaissWriter(index_dir, manifest, fresh=True, vectors=POLICY)
    for f in range(size // PER_FILE):
        source = f"docs/{f:06d}.txt"
        chunks, vecs, page = _batch(rng, source, PER_FILE)
        writer.add_chunks(chunks, vecs)
        writer.add_pages([page])
        writer.finish_file(source, FileRecord(f"{f:064x}", PER_FILE, 1, len(page.text), "docs", now_iso(), source))
    writer.commit()


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _inodes(gen_dir: Path) -> dict[int, int]:
    return {p.stat().st_ino: p.stat().st_size for p in gen_dir.iterdir()}


def add_one(index_dir: Path, n: int) -> tuple[float, int, int, str]:
    """Add one 5-chunk file and commit: (seconds, bytes written, new bytes, kind)."""
    before = _inodes(live_generation(index_dir))
    source = f"notes/new-{n}.txt"
    chunks, vecs, page = _batch(np.random.default_rng(n), source, 5)
    w0, t0 = _wchar(), time.perf_counter()
    writer = FaissWriter(index_dir, read_manifest(live_generation(index_dir)))
    writer.add_file(FileRecord("f" * 64, 5, 1, len(page.text), "notes", now_iso(), source), source, [page], chunks, vecs)
    manifest = writer.commit()
    seconds, written = time.perf_counter() - t0, _wchar() - w0
    after = _inodes(live_generation(index_dir))
    new_bytes = sum(size for ino, size in after.items() if ino not in before)
    kind = "delta" if faiss_segments.deltas(manifest.backend) else "compacted"
    undo = FaissWriter(index_dir, manifest)
    undo.remove_source(source)
    undo.commit()
    return seconds, written, new_bytes, kind


def measure(index_dir: Path, size: int) -> dict:
    if not (index_dir / "CURRENT").exists():
        t0 = time.perf_counter()
        build(index_dir, size)
        print(f"  built {size:,} chunks in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    store = FaissStore.open(index_dir)  # checks it is whole; the figures below leave it as it was
    chunks, disk = store.size, sum(p.stat().st_size for p in store.gen_dir.iterdir())
    store.close()
    runs = [add_one(index_dir, i) for i in range(REPEATS)]
    return {"size": chunks, "disk": disk, "seconds": statistics.median(r[0] for r in runs),
            "written": statistics.median(r[1] for r in runs), "new": statistics.median(r[2] for r in runs),
            "kind": "/".join(sorted({r[3] for r in runs}))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "rag-bench" / "commit_cost")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"commit cost of adding one 5-chunk file; {machine()}; COMPACT_BELOW {faiss_segments.COMPACT_BELOW:,}")
    print(f"{'chunks':>10} {'index MB':>9} {'seconds':>8} {'MB written':>11} {'new MB':>8}  commit")
    results = []
    for size in sizes:
        r = measure(args.cache / f"n{size}", size)
        results.append(r)
        print(f"{r['size']:>10,} {r['disk'] / 1e6:>9.1f} {r['seconds']:>8.3f} {r['written'] / 1e6:>11.3f} "
              f"{r['new'] / 1e6:>8.3f}  {r['kind']}", flush=True)
    small, large = results[0], results[-1]
    t_ratio, b_ratio = large["seconds"] / small["seconds"], large["written"] / max(small["written"], 1)
    verdict = "met" if t_ratio <= TARGET and b_ratio <= TARGET else "NOT met"
    print(f"{large['size']:,} vs {small['size']:,} chunks: {t_ratio:.2f}x the seconds, {b_ratio:.2f}x the bytes "
          f"written (target <= {TARGET:.0f}x: {verdict})")


if __name__ == "__main__":
    main()
