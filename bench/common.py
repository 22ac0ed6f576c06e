"""Shared helpers for the benchmarks: the corpus question set and a corpus loader."""

from __future__ import annotations

import json
import platform
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "bench" / "corpus_questions.jsonl"


def questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_corpus() -> list:
    from rag.discover import discover
    from rag.loaders import load

    inputs = discover([CORPUS]).inputs
    pages = []
    for item in inputs:
        pages.extend(load(item.path, item.source)[0])
    return pages


def machine() -> str:
    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"
