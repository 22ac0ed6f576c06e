"""Fuzz: damaged copies of real documents of every family, ingested in one run, never
stop it. Each file is stored or reported with a reason, nothing reaches the user as a
traceback, and the index still answers. A few dozen cases here (and on the Ray engine in
tests/test_ray_ingest.py); bench/fuzz_ingest.py runs hundreds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakes import HashEmbedder
from fuzz_docs import cases

from rag import Settings, ingest
from rag.index import Index

PROJECT = Path(__file__).resolve().parents[1]
GOOD = "control.md", "# Control\n\nSnowy owls hunt lemmings on the open tundra.\n"


def fuzz_folder(root: Path, n: int, skip_images: bool = True) -> Path:
    root.mkdir(parents=True)
    for name, data in cases(n, skip_images=skip_images).items():
        (root / name).write_bytes(data)
    (root / GOOD[0]).write_text(GOOD[1], encoding="utf-8")
    return root


def test_damaged_documents_are_each_stored_or_reported(tmp_path: Path):
    docs = fuzz_folder(tmp_path / "docs", 48)
    s = Settings.load({"index_dir": tmp_path / "idx", "file_timeout": 20, "workers": 0})
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    names = {p.name for p in docs.iterdir()}
    stored, failed = set(report.added), {f.path for f in report.failed}
    assert stored | failed == names and not stored & failed
    assert all(f.reason and "Traceback" not in f.reason for f in report.failed)
    assert GOOD[0] in stored and len(stored) > len(names) // 4  # most bit flips still read
    hits = Index.open(settings=s, embedder=HashEmbedder()).search("snowy owls lemmings tundra", k=3)
    assert hits and hits[0].source == GOOD[0]


def test_the_cli_ingests_a_damaged_folder_without_a_traceback(tmp_path: Path):
    """The real command line, the real embedder, in its own process: exit 0 or 3, every
    damaged file named, and `rag search` finds the good one afterwards."""
    docs = fuzz_folder(tmp_path / "docs", 24, skip_images=False)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "RAG_FILE_TIMEOUT": "20", "HF_HUB_OFFLINE": "1"}
    index = str(tmp_path / "idx")
    rag = [sys.executable, str(PROJECT / "cli.py")]
    run = subprocess.run([*rag, "ingest", str(docs), "--index-dir", index, "--json", "-q"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode in (0, 3), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    report = json.loads(run.stdout)
    named = set(report["paths"]["added"]) | {f["path"] for f in report["failed"]}
    assert named == {p.name for p in docs.iterdir()}
    assert (run.returncode == 3) == bool(report["failed"])
    found = subprocess.run([*rag, "search", "owls hunting lemmings on the tundra",
                            "--index-dir", index, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert found.returncode == 0, found.stderr
    assert GOOD[0] in [h["source"] for h in json.loads(found.stdout)["hits"]]
