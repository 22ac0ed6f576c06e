"""Start-up and query latency of the CLI, each process timed from outside.

- `rag --help`, against the reference of a bare `python -c pass` (interpreter start).
- `rag search` end to end (start, open the index, embed the query, search, print),
  with the default ONNX embedder, against the same command with
  RAG_EMBED_RUNTIME=torch (sentence-transformers), the reference.
- `rag ask`: the time from process start until llama.cpp is handed the prompt, minus
  the whole `rag search` time: what ask adds of its own (loading the GGUF, building
  and counting the prompt) before prefill starts.

Each figure is the median of `--runs` runs after one warm-up run (warm disk cache).
Targets: help < 0.3 s, search < 1.0 s, ask's own part < 0.3 s. Start-up depends on the
versions installed (typer 0.29 added pydantic validation to every command, typer 0.26
its rich help), so the versions measured are printed with the figures.

    python bench/startup.py [--runs 5] [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, machine  # noqa: E402

QUERY = "How much memory does the KV cache need per token?"
# Runs `rag ask` in process and prints when LlamaCppGenerator.stream is first called,
# in seconds since the process started (time.perf_counter is not tied to process start,
# so the wrapper's own start is taken as the origin; interpreter start is measured apart).
ASK_PROBE = """
import time, sys
t0 = time.perf_counter()
from rag.generators.llama_cpp import LlamaCppGenerator
original = LlamaCppGenerator.stream
def stream(self, prompt, *a, **k):
    self._load(a[2] if len(a) > 2 else k["n_ctx"])
    print(f"PROMPT_AT {time.perf_counter() - t0:.4f}", file=sys.stderr, flush=True)
    yield from original(self, prompt, *a, **k)
LlamaCppGenerator.stream = stream
from rag.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
"""


# The packages a `rag` process imports on its way to an answer, in the order it needs them.
DEPENDENCIES = ("typer", "click", "rich", "numpy", "faiss-cpu", "onnxruntime", "tokenizers", "llama-cpp-python")


def versions() -> str:
    """The installed versions of DEPENDENCIES ("-" for one that is not installed)."""
    found = []
    for name in DEPENDENCIES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


CPU: dict[str, float] = {}  # median CPU seconds (user + sys) of each command median() timed


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    timed.cpu = _children_cpu() - cpu  # type: ignore[attr-defined]
    if out.returncode not in (0, 4):
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-500:]}")
    return seconds, out.stderr


def median(label: str, cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time; the median CPU time goes to CPU (it grows less than wall time
    on a machine busy with other work, so the two together tell load from regressions)."""
    timed(cmd, env)  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        walls.append(timed(cmd, env)[0])
        cpus.append(timed.cpu)  # type: ignore[attr-defined]
    CPU[label] = statistics.median(cpus)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--index-dir", type=Path, default=None)
    args = parser.parse_args()
    py = sys.executable
    script = Path(py).parent / "rag"  # the installed console script, as users run it
    rag = [str(script)] if script.exists() else [py, "-m", "rag.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        index = str(args.index_dir or Path(tmp) / "index")
        subprocess.run([*rag, "ingest", str(CORPUS), "--index-dir", index, "--quiet"], check=True,
                       capture_output=True)
        bare = median("python -c pass", [py, "-c", "pass"], args.runs)
        help_ = median("rag --help", [*rag, "--help"], args.runs)
        search = [*rag, "search", QUERY, "--index-dir", index]
        fast = median("rag search", search, args.runs)
        torch_env = {**os.environ, "RAG_EMBED_RUNTIME": "torch"}
        slow = median("rag search (torch)", search, args.runs, torch_env)
        probe = [py, "-c", ASK_PROBE, "ask", QUERY, "--index-dir", index, "--max-tokens", "1"]
        timed(probe)
        marks = []
        for _ in range(args.runs):
            _, err = timed(probe)
            marks.append(float(next(line.split()[1] for line in err.splitlines() if line.startswith("PROMPT_AT"))))
        prompt_at = statistics.median(marks) + bare  # the probe's clock starts after the interpreter
    own = prompt_at - fast
    print(f"{machine()}; median of {args.runs} runs, warm disk cache")
    print(f"versions: {versions()}")
    print("| step | figure | reference, same run | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| `rag --help` | {help_:.2f} s | `python -c pass` {bare:.2f} s | {help_ / bare:.1f}x | < 0.3 s: "
          f"{'PASS' if help_ < 0.3 else 'FAIL'} |")
    print(f"| `rag search` (ONNX Runtime) | {fast:.2f} s | with torch (RAG_EMBED_RUNTIME=torch) {slow:.2f} s | "
          f"{slow / fast:.1f}x faster | < 1.0 s: {'PASS' if fast < 1.0 else 'FAIL'} |")
    print(f"| `rag ask` until llama.cpp gets the prompt | {prompt_at:.2f} s | `rag search` {fast:.2f} s | "
          f"+{own:.2f} s | < +0.3 s: {'PASS' if own < 0.3 else 'FAIL'} |")
    print("CPU time (user + sys, median) of the same runs: " + ", ".join(f"{k} {v:.2f} s" for k, v in CPU.items()))


if __name__ == "__main__":
    main()
