"""Fuzz ingest, long run: hundreds of damaged copies of real documents (tests/fuzz_docs.py:
bit flips, truncation, damaged zip members and XML, damaged PDF dictionaries including
/Encrypt) ingested in one run, through the real command line in its own process.

Checks, and fails (exit 1) when one does not hold: the exit code is 0 or 3, no traceback
is printed, every file is either stored or named in `failed` with a reason, and
`rag search` still finds the one good control file. Prints how many cases were stored,
failed (by reason family) and warned about, and the time per file; the reference is the
same command on the undamaged seeds, measured in the same run.

    python bench/fuzz_ingest.py [--cases 300] [--seed 28] [--hash]   # --hash: the tests' fake embedder
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from bench.common import machine  # noqa: E402
from fuzz_docs import cases, seeds  # noqa: E402

CONTROL = "control.md", "# Control\n\nSnowy owls hunt lemmings on the open tundra.\n"
# With --hash, the CLI runs with the tests' hash embedder patched in (no model load).
HASHED = ("import sys; sys.path.insert(0, {tests!r}); from fakes import HashEmbedder; import rag.ingestion, rag.index;"
          "rag.ingestion.make_embedder = rag.index.make_embedder = lambda *a, **k: HashEmbedder();"
          "from rag.cli import main; sys.argv[0] = 'rag'; main()")


def rag(args: list[str], hashed: bool, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = HASHED.format(tests=str(ROOT / "tests")) if hashed else "from rag.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=7200)


def run(files: dict[str, bytes], hashed: bool) -> tuple[dict, subprocess.CompletedProcess[str], float, list[str]]:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-fuzz-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name, data in {**files, CONTROL[0]: CONTROL[1].encode()}.items():
            (docs / name).write_bytes(data)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_FILE_TIMEOUT": "30", "HF_HUB_OFFLINE": "1",
               "RAG_CACHE_DIR": str(Path(tmp) / "cache")}
        index = str(Path(tmp) / "idx")
        started = time.perf_counter()
        done = rag(["ingest", str(docs), "--index-dir", index, "--json", "-q"], hashed, env)
        seconds = time.perf_counter() - started
        if done.returncode not in (0, 3):
            problems.append(f"exit code {done.returncode}: {done.stderr.strip()[-400:]}")
        if "Traceback" in done.stdout + done.stderr:
            problems.append("a traceback was printed")
        try:
            report = json.loads(done.stdout)
        except ValueError:
            return {}, done, seconds, problems + ["no JSON report"]
        named = set(report["paths"]["added"]) | {f["path"] for f in report["failed"]}
        missing = {p.name for p in docs.iterdir()} - named
        if missing:
            problems.append(f"neither stored nor reported: {sorted(missing)}")
        found = rag(["search", "snowy owls lemmings tundra", "--index-dir", index, "--json"], hashed, env)
        if found.returncode != 0 or CONTROL[0] not in [h["source"] for h in json.loads(found.stdout or "{}")
                                                       .get("hits", [])]:
            problems.append(f"the index does not answer: {found.stderr.strip()[-300:]}")
    return report, done, seconds, problems


def family(reason: str) -> str:
    """A failure's reason without its particulars, for counting."""
    return re.sub(r"\(.*", "", reason).strip().rstrip(":")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--hash", action="store_true", help="the tests' hash embedder instead of the real one")
    args = parser.parse_args()
    print(f"machine: {machine()}; embedder: {'hash (fake)' if args.hash else 'the default (real)'}")
    clean, _, clean_s, clean_problems = run(seeds(), args.hash)
    n_clean = len(seeds()) + 1
    report, done, seconds, problems = run(cases(args.cases, args.seed), args.hash)
    problems += [f"undamaged seeds: {p}" for p in clean_problems]
    failed = report.get("failed", [])
    print(f"cases: {args.cases} (+1 control file), exit code {done.returncode}")
    print(f"stored {len(report.get('paths', {}).get('added', []))}, failed {len(failed)}, "
          f"files with warnings {len({w['path'] for w in report.get('warnings', [])})}")
    for reason, n in collections.Counter(family(f["reason"]) for f in failed).most_common():
        print(f"  {n:4d}  {reason}")
    per_file, ref = seconds / (args.cases + 1), clean_s / n_clean
    print(f"time: {seconds:.1f} s, {per_file * 1000:.0f} ms a file; undamaged seeds {ref * 1000:.0f} ms a file "
          f"({n_clean} files, {len(clean.get('failed', []))} failed); ratio {per_file / ref:.2f}")
    for p in problems:
        print(f"PROBLEM: {p}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
