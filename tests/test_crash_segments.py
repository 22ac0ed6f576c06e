"""Crash safety of delta commits: test_crash.py's kills, with the child writing a delta
segment (RAG_FAISS_COMPACT_BELOW=0) on top of the version-1 index instead of compacting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from fakes import HashEmbedder
from rag.ingestion import ingest
from rag.stores import faiss_segments
from rag.stores.faiss import FaissStore as Store
from test_crash import BEFORE_FLIP, CHILD, World, content, crash_settings, exact_state, gen_dirs, kill, make_world
from test_crash import reached, wait_for_point

SEGMENTED = {"RAG_FAISS_COMPACT_BELOW": "0", "RAG_FAISS_DELTA_SHARE": "10"}


@pytest.fixture
def segmented(monkeypatch):
    monkeypatch.setattr(faiss_segments, "COMPACT_BELOW", 0)
    monkeypatch.setattr(faiss_segments, "DELTA_SHARE", 10.0)


def _start(world: World, procs: list, **cfg) -> subprocess.Popen:
    cfg = {"mode": "ingest", "docs": str(world.docs), "index": str(world.index),
           "markers": str(world.base / "markers"), **cfg}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k in ("RAG_CACHE_DIR", "RAG_EMBED_CACHE")}
    with open(world.base / "child.err", "ab") as err:
        proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(cfg)], cwd=world.base, env={**env, **SEGMENTED},
                                stdout=subprocess.DEVNULL, stderr=err)
    procs.append(proc)
    return proc


def _same(index, new) -> bool:
    """Same files, chunks and pages as the clean ingest; searches find the same chunks
    (their hybrid scores differ a little: BM25 statistics are per segment)."""
    got = content(index)
    if {k: v for k, v in got.items() if k != "searches"} != {k: v for k, v in new.items() if k != "searches"}:
        return False
    return all(sorted(r[1:] for r in a) == sorted(r[1:] for r in b) for a, b in zip(got["searches"], new["searches"]))


def _deltas(world: World) -> int:
    store = Store.open(world.index)
    try:
        return len(faiss_segments.deltas(store.manifest.backend))
    finally:
        store.close()


@pytest.mark.parametrize("point", ["embed-3", "commit", "manifest-write", "current-tmp", "current-replaced", "mid-sweep"])
def test_kill_during_a_delta_commit_leaves_the_old_or_the_new_index(tmp_path, segmented, point):
    world = make_world(tmp_path)
    procs: list = []
    try:
        proc = _start(world, procs, pause_at=point)
        wait_for_point(world, proc, point)
        assert kill(proc) == -signal.SIGKILL
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    assert point in reached(world)
    now = exact_state(world.index)
    if point in BEFORE_FLIP:
        assert now == world.old and _deltas(world) == 0
    else:
        assert _same(world.index, world.new) and _deltas(world) == 1
    report = ingest([world.docs], embedder=HashEmbedder(), settings=crash_settings(world.index))
    assert report.failed == ()
    assert _same(world.index, world.new)
    assert gen_dirs(world.index) == [(world.index / "CURRENT").read_text().strip()]
