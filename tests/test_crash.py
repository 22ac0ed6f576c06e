"""Crash safety: an ingest killed with SIGKILL at any moment leaves the previous index whole.

A child process (tests/crash_child.py) runs the ingest with a HashEmbedder and is killed
either at named points of the write path, where it pauses, or at fractions of the time
an uninterrupted run takes. After each kill the live generation must open, its vectors,
chunk rows and manifest must agree, and its content must be exactly the index before
the ingest (killed before CURRENT flipped) or exactly what a clean ingest of the new
folder gives (after the flip). The next ingest must then finish the work and leave one
generation behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from crash_child import crash_settings
from fakes import HashEmbedder
from rag.stores import faiss as store_mod
from rag.errors import IndexLockedError, IndexNotFoundError
from rag.index import Index
from rag.ingestion import ingest
from rag.stores.faiss import FaissStore as Store

CHILD = Path(__file__).resolve().with_name("crash_child.py")
DELAY = 0.04  # seconds the slow child embedder sleeps per chunk (batch_size is 1)

WORDS = (
    "river mountain harbor lantern copper meadow glacier orchard violin canyon falcon ember "
    "marble thunder willow beacon saddle quartz prairie compass lagoon timber velvet summit "
    "anchor blossom cobalt desert fossil garnet hollow island jasmine kettle ledger magnet "
    "nectar oyster pepper quiver ribbon satchel tundra umbrella vapor walnut yonder zephyr "
    "almond bramble cinder dagger eclipse feather goblet hazel ivory juniper kelp lilac "
    "mosaic nutmeg opal parsley quill raven sable tulip urchin vessel wander yarrow zinc"
).split()
QUERIES = ["river mountain harbor", "copper lantern violin", "falcon ember marble thunder",
           "tulip urchin vessel", "opal parsley quill raven", "glacier orchard"]

# 40 files in three folders; the second version of the folder changes 12, adds 6, deletes 5.
V1 = [f"{folder}/{i:02d}.{ext}" for i, (folder, ext) in enumerate(
    [("alpha", "md")] * 14 + [("beta", "txt")] * 14 + [("gamma/deep", "md")] * 12)]
UPDATED = V1[0:8] + V1[20:24]
REMOVED = V1[30:35]
ADDED = [f"new/{i:02d}.txt" for i in range(6)]

# The named points of crash_child.py, in order; from "current-replaced" on CURRENT names the new generation.
BEFORE_FLIP = ["started", "writer-created", "embed-1", "embed-3", "commit", "manifest-write", "current-write",
               "current-tmp"]
AFTER_FLIP = ["current-replaced", "sweep", "mid-sweep", "swept"]
EVERY_POINT = BEFORE_FLIP + AFTER_FLIP + ["done"]


def _text(name: str, version: int) -> str:
    rng = random.Random(f"{name}@{version}")

    def para() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 45))) + ".\n"

    if name.endswith(".md"):
        return f"# {rng.choice(WORDS).title()}\n\n{para()}\n## {rng.choice(WORDS).title()}\n\n{para()}"
    return f"{para()}\n{para()}"


def write_v1(docs: Path) -> None:
    for name in V1:
        path = docs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(name, 1), encoding="utf-8")


def write_v2(docs: Path) -> None:
    for name in UPDATED:
        (docs / name).write_text(_text(name, 2), encoding="utf-8")
    for name in REMOVED:
        (docs / name).unlink()
    for name in ADDED:
        path = docs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(name, 1), encoding="utf-8")


def v2_sources() -> list[str]:
    return sorted(set(V1) - set(REMOVED) | set(ADDED))


# -- reading an index -------------------------------------------------------------------


def gen_dirs(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob("gen-*"))


def searches(index_dir: Path) -> list[list[tuple[int, float, str, int, str]]]:
    """Every chunk ranked for each query, as (chunk id, score, source, start, text)."""
    index = Index.open(settings=crash_settings(index_dir), embedder=HashEmbedder())
    try:
        k = index.store.size
        return [[(h.chunk_id, h.score, h.source, h.start, h.text) for h in index.search(q, k=k)] for q in QUERIES]
    finally:
        index.close()


def exact_state(index_dir: Path) -> dict[str, Any]:
    """The live generation as it is: its name, manifest, rows with their ids, rankings with ids."""
    store = Store.open(index_dir)
    try:
        chunks = store._db.execute('SELECT id, source, page, heading, start, "end", text, tokens FROM chunks '
                                   "ORDER BY id").fetchall()
        pages = store._db.execute('SELECT source, page, "offset", text, generation FROM pages '
                                  'ORDER BY source, page, "offset"').fetchall()
        state = {"gen": store.gen_dir.name, "manifest": store.manifest, "chunks": chunks, "pages": pages}
    finally:
        store.close()
    state["searches"] = searches(index_dir)
    return state


def content(index_dir: Path) -> dict[str, Any]:
    """What the index holds, independent of chunk ids, generation numbers and timestamps."""
    state = exact_state(index_dir)
    return {
        "files": {s: replace(r, ingested_at="") for s, r in state["manifest"].files.items()},
        "chunks": sorted(row[1:] for row in state["chunks"]),
        "pages": sorted(row[:4] for row in state["pages"]),
        "searches": [sorted(((-round(score, 5), source, start, text) for _, score, source, start, text in ranking))
                     for ranking in state["searches"]],
    }


def assert_consistent(index_dir: Path) -> None:
    """The live generation opens and its vectors, chunk rows, pages and manifest agree."""
    live = (index_dir / store_mod.CURRENT).read_text(encoding="utf-8").strip()
    store = Store.open(index_dir)  # raises on a missing or torn generation
    try:
        assert store.gen_dir.name == live
        manifest = store.manifest
    finally:
        store.close()
    gen = index_dir / live
    vectors = faiss.read_index(str(gen / store_mod.VECTORS))
    db = sqlite3.connect(f"file:{gen / store_mod.CHUNKS_DB}?mode=ro", uri=True)
    try:
        rows = db.execute('SELECT id, source, heading, text FROM chunks ORDER BY id').fetchall()
        page_sources = {s for (s,) in db.execute("SELECT DISTINCT source FROM pages")}
    finally:
        db.close()
    assert manifest.chunks == vectors.ntotal == len(rows) > 0
    ids = [r[0] for r in rows]
    assert sorted(faiss.vector_to_array(vectors.id_map).tolist()) == ids, "FAISS ids differ from the chunk rows"
    assert manifest.next_id > max(ids)
    embedder = HashEmbedder()
    for cid, source, heading, text in rows:
        expected = embedder._vector(f"{heading}\n{text}" if heading else text)
        assert np.allclose(vectors.reconstruct(cid), expected, atol=1e-6), f"vector {cid} is not its chunk's ({source})"
    per_source: dict[str, int] = {}
    for _, source, _, _ in rows:
        per_source[source] = per_source.get(source, 0) + 1
    files = manifest.files
    assert set(per_source) == set(files) == page_sources
    assert {s: r.chunks for s, r in files.items()} == per_source


# -- a world: an index of version 1 and the reference index of version 2 ------------------


@dataclass
class World:
    base: Path
    docs: Path
    index: Path
    old: dict[str, Any] | None  # exact_state of the index before the killed ingest
    new: dict[str, Any]  # content of a clean ingest of version 2


def make_world(base: Path, first_index: bool = True) -> World:
    docs = base / "docs"
    index = base / "index"
    write_v1(docs)
    old = None
    if first_index:
        report = ingest([docs], embedder=HashEmbedder(), settings=crash_settings(index))
        assert sorted(report.added) == sorted(V1) and report.failed == ()
        assert_consistent(index)
        old = exact_state(index)
    write_v2(docs)
    ref = base / "reference"
    report = ingest([docs], embedder=HashEmbedder(), settings=crash_settings(ref))
    assert sorted(report.added) == v2_sources() and report.failed == ()
    new = content(ref)
    if old is not None:  # the two states must tell apart, searches included
        assert content(index) != new
        assert all(a != b for a, b in zip(content(index)["searches"], new["searches"]))
    return World(base, docs, index, old, new)


@pytest.fixture
def children():
    """Child processes started by a test; any still alive at the end is killed."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_child(world: World, children: list, **cfg: Any) -> subprocess.Popen:
    cfg = {"mode": "ingest", "docs": str(world.docs), "index": str(world.index),
           "markers": str(world.base / "markers"), **cfg}
    # No RAG_* setting of the caller, but the test session's cache folder and its choice
    # of no embedding cache (every run embeds, so every embed-N point is reached).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k in ("RAG_CACHE_DIR", "RAG_EMBED_CACHE")}
    with open(world.base / "child.err", "ab") as err:
        proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(cfg)], cwd=world.base, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    children.append(proc)
    return proc


def reached(world: World) -> set[str]:
    folder = world.base / "markers"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def child_err(world: World) -> str:
    path = world.base / "child.err"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def wait_for_point(world: World, proc: subprocess.Popen, point: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (world.base / "markers" / point).exists():
        assert proc.poll() is None, f"child exited ({proc.returncode}) before {point}: {child_err(world)}"
        assert time.monotonic() < deadline, f"child never reached {point}; it reached {sorted(reached(world))}"
        time.sleep(0.005)


def kill(proc: subprocess.Popen) -> int | None:
    """SIGKILL the child; returns its exit code (-9, or 0 if it had already finished)."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait(timeout=30)


def check_after_kill(world: World) -> str:
    """The index left by a killed ingest: consistent, and either the old or the new one."""
    if world.old is None:
        if not store_mod.exists(world.index):
            with pytest.raises(IndexNotFoundError):
                Store.open(world.index)
            return "old"
        assert_consistent(world.index)
        assert content(world.index) == world.new
        return "new"
    assert_consistent(world.index)
    now = exact_state(world.index)
    if now["gen"] == world.old["gen"]:
        assert now == world.old, "the live generation changed under a killed ingest"
        return "old"
    assert content(world.index) == world.new, "the new generation went live unfinished"
    return "new"


def finish_and_check(world: World, state: str) -> None:
    """The next ingest does the remaining work and leaves just the clean result."""
    report = ingest([world.docs], embedder=HashEmbedder(), settings=crash_settings(world.index))
    assert report.failed == ()
    if state == "old" and world.old is None:
        assert sorted(report.added) == v2_sources() and report.updated == report.removed == ()
    elif state == "old":
        assert (sorted(report.added), sorted(report.updated), sorted(report.removed)) == (
            sorted(ADDED), sorted(UPDATED), sorted(REMOVED))
    else:
        assert report.added == report.updated == report.removed == () and report.chunks_embedded == 0
        assert sorted(report.unchanged) == v2_sources()
    assert_consistent(world.index)
    assert content(world.index) == world.new
    live = (world.index / store_mod.CURRENT).read_text(encoding="utf-8").strip()
    gens = gen_dirs(world.index)
    assert gens == [live], "a generation of the killed run was left behind"
    assert not list(world.index.glob("*.tmp")), "a temporary file of the killed run was left behind"
    again = ingest([world.docs], embedder=HashEmbedder(), settings=crash_settings(world.index))
    assert again.added == again.updated == again.removed == () and again.chunks_embedded == 0


# -- killed at named points ---------------------------------------------------------------


@pytest.mark.parametrize("point", BEFORE_FLIP + AFTER_FLIP)
def test_kill_at_a_named_point_leaves_a_whole_index_and_the_next_ingest_finishes(tmp_path, children, point):
    world = make_world(tmp_path)
    proc = start_child(world, children, pause_at=point)
    wait_for_point(world, proc, point)
    if point != "started":  # the paused child holds the writer lock; readers are unaffected
        with pytest.raises(IndexLockedError):
            ingest([world.docs], embedder=HashEmbedder(), settings=crash_settings(world.index))
    assert kill(proc) == -signal.SIGKILL
    passed = reached(world)
    assert point in passed and "done" not in passed
    state = check_after_kill(world)
    assert state == ("old" if point in BEFORE_FLIP else "new")
    if point in ("embed-3", "current-write"):  # the killed run's unfinished generation is on disk
        assert len(gen_dirs(world.index)) == 2
    if point == "swept":
        assert gen_dirs(world.index) == [(world.index / store_mod.CURRENT).read_text().strip()]
    finish_and_check(world, state)


@pytest.mark.parametrize("point", ["embed-3", "current-tmp", "current-replaced"])
def test_kill_during_the_very_first_ingest(tmp_path, children, point):
    world = make_world(tmp_path, first_index=False)
    proc = start_child(world, children, pause_at=point)
    wait_for_point(world, proc, point)
    assert kill(proc) == -signal.SIGKILL
    assert check_after_kill(world) == ("new" if point == "current-replaced" else "old")
    finish_and_check(world, "new" if point == "current-replaced" else "old")


# -- killed at moments in time ------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted slow child ingest: how long it takes and what it leaves."""
    world = make_world(tmp_path_factory.mktemp("full"))
    procs: list[subprocess.Popen] = []
    t0 = time.monotonic()
    proc = start_child(world, procs, delay=DELAY)
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            kill(proc)
    seconds = time.monotonic() - t0
    out = {"world": world, "code": code, "seconds": seconds, "reached": reached(world), "err": child_err(world)}
    if code == 0:
        out["report"] = json.loads((world.base / "markers" / "report.json").read_text())
    return out


def test_uninterrupted_slow_child_passes_every_point_and_matches_a_clean_ingest(full_run):
    world = full_run["world"]
    assert full_run["code"] == 0, full_run["err"]
    assert set(EVERY_POINT) <= full_run["reached"]
    report = full_run["report"]
    assert (sorted(report["paths"]["added"]), sorted(report["paths"]["updated"]),
            sorted(report["paths"]["removed"])) == (sorted(ADDED), sorted(UPDATED), sorted(REMOVED))
    # slow enough that the moments below fall inside the run: DELAY per embedded chunk
    assert full_run["seconds"] >= report["chunks_embedded"] * DELAY >= 1.5
    assert_consistent(world.index)
    assert content(world.index) == world.new
    assert gen_dirs(world.index) == [(world.index / store_mod.CURRENT).read_text().strip()]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9])
def test_kill_at_a_moment_of_the_run_leaves_a_whole_index_and_the_next_ingest_finishes(
    tmp_path, children, full_run, fraction
):
    world = make_world(tmp_path)
    t0 = time.monotonic()
    proc = start_child(world, children, delay=DELAY)
    time.sleep(max(0.0, t0 + fraction * full_run["seconds"] - time.monotonic()))
    code = kill(proc)
    assert code in (-signal.SIGKILL, 0), child_err(world)
    state = check_after_kill(world)
    if code == 0 or "current-replaced" in reached(world):
        assert state == "new"
    if "current-tmp" not in reached(world):
        assert state == "old", f"CURRENT flipped before the child got there; it reached {sorted(reached(world))}"
    finish_and_check(world, state)


# -- the writer lock ----------------------------------------------------------------------


def test_writer_lock_of_a_killed_holder_is_released(tmp_path, children):
    world = make_world(tmp_path)
    proc = start_child(world, children, mode="lock", pause_at="locked")
    wait_for_point(world, proc, "locked")
    with pytest.raises(IndexLockedError):
        ingest([world.docs], embedder=HashEmbedder(), settings=crash_settings(world.index))
    assert exact_state(world.index) == world.old  # the refused ingest touched nothing
    assert kill(proc) == -signal.SIGKILL
    finish_and_check(world, "old")
