"""Re-ingest of an unchanged folder against the first ingest, as a user sees both.

A temporary folder holds a copy of corpus/ plus the first 300 SciFact abstracts as .txt
files. `rag ingest FOLDER --index-dir TMP --quiet` runs as a subprocess (wall time
includes interpreter start, imports and, for the first ingest, loading the default
embedder): once on an empty index, then three more times on the unchanged folder. An
unchanged file is recognised by its SHA-256 and must cost neither a model load nor a
new index generation (checked: CURRENT must not move). The reference is the first
ingest in the same run; target: re-ingest (median of 3) at least 50x faster. For
scale it also prints the floor any CLI call pays: `python -c pass` and
`python -m rag.cli --help`.

    python bench/reingest.py [--docs 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, ROOT, machine  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train" / "corpus.jsonl"
TARGET = 50.0
REPEATS = 3


def cli() -> list[str]:
    """`python -m rag.cli` if it runs here, else the `rag` script next to the interpreter."""
    probe = subprocess.run([sys.executable, "-m", "rag.cli", "--help"], cwd=ROOT, capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "rag.cli"]
    script = Path(sys.executable).with_name("rag")
    if script.exists():
        return [str(script)]
    raise SystemExit(f"cannot run the CLI: python -m rag.cli failed ({probe.stderr.decode()[-300:]}) and no {script}")


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def write_docs(folder: Path, n: int) -> None:
    shutil.copytree(CORPUS, folder / "corpus")
    (folder / "scifact").mkdir()
    with open(SCIFACT, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            doc = json.loads(line)
            (folder / "scifact" / f"scifact-{doc['_id']}.txt").write_text(
                f"{doc['title']}\n\n{doc['text']}\n", encoding="utf-8"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300, help="SciFact abstracts added to corpus/ (default 300)")
    args = parser.parse_args()
    rag = cli()
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-reingest-"))
    try:
        docs, index_dir = tmp / "docs", tmp / "index"
        docs.mkdir()
        write_docs(docs, args.docs)
        files = sum(1 for p in docs.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in docs.rglob("*") if p.is_file())
        cmd = rag + ["ingest", str(docs), "--index-dir", str(index_dir), "--quiet"]
        print(f"machine: {machine()}")
        print(f"command: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}")
        print(f"input: {files} files, {size / 1e6:.2f} MB (corpus/ + {args.docs} SciFact abstracts)")

        first = timed(cmd)
        manifest = json.loads((_live(index_dir) / "manifest.json").read_text(encoding="utf-8"))
        generation = (index_dir / "CURRENT").read_text()
        print(f"first ingest: {first:7.2f} s ({len(manifest['files'])} files, {manifest['chunks']} chunks; model load included)")

        again = []
        for r in range(REPEATS):
            again.append(timed(cmd))
            if (index_dir / "CURRENT").read_text() != generation:
                print(f"  note: re-ingest {r + 1} wrote a new index generation although nothing changed")
        print(f"re-ingest:    {statistics.median(again):7.2f} s median of {REPEATS} ({', '.join(f'{s:.2f}' for s in again)})")
        floor_python = min(timed([sys.executable, "-c", "pass"]) for _ in range(3))
        floor_cli = min(timed(rag + ["--help"]) for _ in range(3))
        print(f"floor: python -c pass {floor_python:.2f} s; rag --help {floor_cli:.2f} s")
        ratio = first / statistics.median(again)
        print(f"ratio first/re-ingest: {ratio:.1f}x  target >= {TARGET:.0f}x: {'PASS' if ratio >= TARGET else 'FAIL'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _live(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


if __name__ == "__main__":
    main()
