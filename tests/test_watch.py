"""`rag watch` (rag/watch.py): the real watcher (watchfiles, inotify) on temporary
folders with real ingest and the hash embedder. After each scenario the index must
equal what a fresh `rag ingest` of the folder gives: same files, same chunk texts and
pages. Waits poll for the expected state with a deadline; the debounce is short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from fakes import HashEmbedder, make_folder
from index_state import index_state
from rag.config import Settings
from rag.errors import RagError
from rag.ingestion import ingest
from rag.stores import backend_for
from rag.watch import Watcher, WatchEvent

TESTS = Path(__file__).resolve().parent
DEBOUNCE = 0.3
DEADLINE = 30.0


def settings(tmp_path: Path, index: str = "index", **kw) -> Settings:
    return Settings.load({"index_dir": tmp_path / index, "chunk_tokens": 32, "chunk_overlap": 4,
                          "embed_cache": False, **kw})


def fresh(tmp_path: Path, docs: Path, name: str = "fresh") -> dict:
    """What a fresh `rag ingest` of the folder holds (nothing, for a folder without documents)."""
    s = settings(tmp_path, name)
    try:
        ingest([docs], settings=s, embedder=HashEmbedder(), rebuild=True)
    except RagError as exc:
        assert "no supported documents" in str(exc)
        return {}
    return index_state(s)


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """A watcher in a thread, with the events it reported."""

    def __init__(self, watcher: Watcher, events: list[WatchEvent]) -> None:
        self.watcher, self.events = watcher, events

    def syncs(self) -> list[WatchEvent]:
        return [e for e in self.events if e.event == "sync"]

    def converges(self, tmp_path: Path, docs: Path, deadline: float = DEADLINE) -> dict:
        """Wait until the index equals a fresh ingest of `docs`; returns that state."""
        expected = fresh(tmp_path, docs)
        s = self.watcher.settings
        # Idle too: the batch that committed has reported it, and nothing is left to do.
        wait_for(lambda: self.watcher.idle and index_state(s) == expected, "the index to match a fresh ingest",
                 deadline)
        return expected


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Watcher] = []

    def start(*folders: Path, **kw) -> Running:
        events: list[WatchEvent] = []
        kw.setdefault("debounce", DEBOUNCE)
        kw.setdefault("embedder", HashEmbedder())
        watcher = Watcher(folders, kw.pop("settings", settings(tmp_path)), on_event=events.append, **kw)
        watcher.start()
        started.append(watcher)
        wait_for(lambda: any(e.event == "watching" for e in events), "the initial sync")
        return Running(watcher, events)

    yield start
    for w in started:
        w.stop()
        assert w._thread is not None and not w._thread.is_alive(), "the watcher did not stop"


def test_create_modify_delete_and_rename_files_and_folders(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    run = watching(docs)
    assert run.syncs()[0].initial and len(run.syncs()[0].report.added) == 3
    run.converges(tmp_path, docs)

    (docs / "new.md").write_text("# New\n\nOtters hold hands while they sleep.\n")
    (docs / "deep" / "er").mkdir(parents=True)
    (docs / "deep" / "er" / "x.txt").write_text("Walruses use their tusks to climb.\n")
    state = run.converges(tmp_path, docs)
    assert "new.md" in state and "deep/er/x.txt" in state

    (docs / "cats.md").write_text("# Cats\n\nCats now chase laser dots all evening.\n")
    (docs / "dogs.txt").unlink()
    run.converges(tmp_path, docs)

    embedded_before = sum(e.report.chunks_embedded for e in run.syncs())
    (docs / "new.md").rename(docs / "renamed.md")
    (docs / "sub").rename(docs / "moved-sub")
    state = run.converges(tmp_path, docs)
    assert "renamed.md" in state and "moved-sub/birds.md" in state
    moved = [m for e in run.syncs() for m in e.report.moved]
    assert ("new.md", "renamed.md") in moved and ("sub/birds.md", "moved-sub/birds.md") in moved
    assert sum(e.report.chunks_embedded for e in run.syncs()) == embedded_before  # renames embed nothing

    import shutil
    shutil.rmtree(docs / "deep")
    state = run.converges(tmp_path, docs)
    assert "deep/er/x.txt" not in state
    last = run.syncs()[-1].to_dict()
    assert last["event"] == "sync" and last["timestamp"].endswith("Z") and "chunks_embedded" in last


def test_the_milvus_store_is_kept_in_sync_too(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, store="milvus", milvus_uri=str(tmp_path / "watch.db"))
    run = watching(docs, settings=s)
    (docs / "cats.md").write_text("# Cats\n\nCats watch birds from the window.\n")
    (docs / "sub").rename(docs / "aviary")
    (docs / "dogs.txt").unlink()
    expected = fresh(tmp_path, docs)  # FAISS: the same files, chunks and pages
    wait_for(lambda: run.watcher.idle and index_state(s) == expected, "the Milvus index to match a fresh ingest")
    assert ("sub/birds.md", "aviary/birds.md") in [m for e in run.syncs() for m in e.report.moved]


def test_a_burst_of_500_files_becomes_a_few_commits(tmp_path, watching):
    docs = make_folder(tmp_path / "docs", {"seed.md": "Seed text about lichens.\n"})
    run = watching(docs)
    for n in range(500):
        (docs / f"note-{n:03d}.txt").write_text(f"Note {n} mentions the word token{n} and moss.\n")
    run.converges(tmp_path, docs, deadline=60.0)
    batches = run.syncs()[1:]
    assert sum(len(e.report.added) for e in batches) == 500
    assert len(batches) <= 5, [len(e.report.added) for e in batches]


def test_a_file_written_slowly_is_read_once_whole(tmp_path, watching):
    docs = make_folder(tmp_path / "docs", {"seed.md": "Seed.\n"})
    # Events never pause for the debounce, so after max_wait a batch goes in anyway: the
    # file, still growing, must wait for its size and mtime to hold still.
    run = watching(docs, max_wait=0.5)
    with open(docs / "slow.txt", "w") as fh:
        for n in range(16):
            fh.write(f"Piece {n} of a slowly written file about glaciers.\n")
            fh.flush()
            time.sleep(DEBOUNCE / 3)
    state = run.converges(tmp_path, docs)
    assert "Piece 15" in state["slow.txt"][4][-1][-1]
    touched = [e for e in run.syncs() if "slow.txt" in e.report.added + e.report.updated]
    assert len(touched) == 1 and touched[0].report.added == ("slow.txt",)


def test_an_editor_style_save_updates_the_file_in_place(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    run = watching(docs)
    for n in range(3):  # vim/VS Code style: write a temporary file, rename it over the original
        tmp = docs / ".cats.md.swp"
        tmp.write_text(f"# Cats\n\nSave number {n}: cats knead blankets.\n")
        (docs / "cats.md~").write_text("backup")
        os.replace(tmp, docs / "cats.md")
        time.sleep(DEBOUNCE * 2)
    state = run.converges(tmp_path, docs)
    assert "Save number 2" in state["cats.md"][4][0][-1] and "cats.md~" not in state
    assert all(not e.report.removed and not e.report.added for e in run.syncs()[1:])


def test_a_file_that_fails_is_reported_then_synced_once_fixed(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    run = watching(docs)
    (docs / "broken.txt").write_bytes(b"text\x00with NUL bytes")
    wait_for(lambda: any(e.report.failed for e in run.syncs()), "the failure to be reported")
    failure = next(e for e in run.syncs() if e.report.failed).report.failed[0]
    assert failure.path == "broken.txt" and "binary" in failure.reason
    assert run.watcher._thread.is_alive()
    (docs / "broken.txt").write_text("Now it is fine text about puffins.\n")
    state = run.converges(tmp_path, docs)
    assert "broken.txt" in state


def test_a_removed_folder_is_reported_and_synced_again_when_it_returns(tmp_path, watching):
    import shutil

    docs = make_folder(tmp_path / "docs")
    run = watching(docs)
    shutil.rmtree(docs)
    wait_for(lambda: any(e.event == "missing" for e in run.events), "the folder to be reported gone")
    assert len(index_state(run.watcher.settings)) == 3  # kept while it is gone
    make_folder(docs, {"cats.md": "# Cats\n\nCats came back with new habits.\n", "fresh.md": "Fresh file.\n"})
    wait_for(lambda: any(e.event == "back" for e in run.events), "the folder to be reported back")
    run.converges(tmp_path, docs)
    (docs / "later.md").write_text("Changes after the return are followed too.\n")
    assert "later.md" in run.converges(tmp_path, docs)


def test_a_manual_ingest_while_watching_works_and_nothing_doubles(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    run = watching(docs)
    s = run.watcher.settings
    for n in range(20):
        (docs / f"m{n}.md").write_text(f"Manual {n} about storks.\n")
    report = ingest([docs], settings=s, embedder=HashEmbedder(), lock_wait=30.0)
    assert report.files == 23
    (docs / "after.md").write_text("After the manual ingest.\n")
    state = run.converges(tmp_path, docs)
    assert len(state) == 24


def test_polling_finds_changes_too(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    run = watching(docs, poll=0.2)
    (docs / "polled.md").write_text("Polling sees this file about narwhals.\n")
    (docs / "dogs.txt").unlink()
    state = run.converges(tmp_path, docs)
    assert "polled.md" in state and "dogs.txt" not in state


def test_a_watcher_killed_in_mid_batch_converges_on_restart(tmp_path, watching):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    marker = tmp_path / "embedding"
    child = subprocess.Popen([sys.executable, "-c", _SLOW_CHILD, str(docs), str(s.index_dir), str(marker)],
                             cwd=TESTS, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (tmp_path / "index" / "CURRENT").exists() and marker.exists(), "the child's first sync")
        marker.unlink()
        for n in range(30):
            (docs / f"k{n}.md").write_text(f"Kill test {n} about cormorants.\n")
        wait_for(lambda: marker.exists(), "the child to be embedding a batch")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert len(index_state(s)) == 3  # the batch never committed
    run = watching(docs, settings=s)
    assert len(run.converges(tmp_path, docs)) == 33


# The child: a watcher whose embedder marks that it is embedding, then takes its time.
_SLOW_CHILD = """
import sys, time
from pathlib import Path
from fakes import HashEmbedder
from rag.config import Settings
from rag.watch import Watcher

docs, index, marker = sys.argv[1:]

class Slow(HashEmbedder):
    calls = 0

    def embed(self, texts, batch_size=32, progress=None):
        Path(marker).write_text("x")
        self.calls += 1
        time.sleep(0.0 if self.calls == 1 else 30.0)  # the initial sync goes in; no later batch does
        return super().embed(texts, batch_size, progress)

s = Settings.load({"index_dir": index, "chunk_tokens": 32, "chunk_overlap": 4, "embed_cache": False})
Watcher([docs], s, embedder=Slow(), debounce=0.3).run()
"""


def test_sigterm_stops_the_cli_cleanly_with_ndjson_on_stdout(tmp_path):
    docs = make_folder(tmp_path / "docs")
    code = ("import sys, rag.ingestion, rag.index; from fakes import HashEmbedder; "
            "rag.ingestion.make_embedder = lambda *a, **k: HashEmbedder(); "
            "from rag.cli import app; app(sys.argv[1:], prog_name='rag')")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "watch", str(docs), "--index-dir", str(tmp_path / "index"), "--json",
         "--debounce", "0.2", "--chunk-tokens", "32", "--chunk-overlap", "4"],
        cwd=TESTS, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: [lines.append(json.loads(l)) for l in proc.stdout], daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 1, "the initial sync line")
        (docs / "cli.md").write_text("The CLI watcher sees this file about ospreys.\n")
        wait_for(lambda: len(lines) >= 2, "the batch line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    reader.join(5)
    assert proc.returncode == 0, proc.stderr.read()
    first, second = lines[:2]
    assert first["event"] == "sync" and first["initial"] and first["added"] == 3 and first["timestamp"]
    assert second["event"] == "sync" and not second["initial"] and second["paths"]["added"] == ["cli.md"]
    assert {"added", "updated", "removed", "failed", "chunks_embedded", "files", "chunks"} <= set(second)
    err = proc.stderr.read()
    assert "initial sync" in err and "synced: 1 added" in err and "stopped" in err
    assert backend_for(settings(tmp_path)).read_manifest().files.keys() >= {"cli.md"}


def test_the_real_embedder_end_to_end_a_saved_file_becomes_searchable(tmp_path, watching):
    from rag.index import Index

    docs = make_folder(tmp_path / "docs")
    s = Settings.load({"index_dir": tmp_path / "index"})
    run = watching(docs, settings=s, embedder=None)  # the default model, loaded by the watcher
    (docs / "volcano.md").write_text("# Volcanoes\n\nMount Tambora erupted in 1815 and cooled the planet.\n")

    def found() -> bool:
        index = Index.open(settings=s)
        try:
            return index.search("Which volcano erupted in 1815?", 1)[0].source == "volcano.md"
        finally:
            index.close()

    wait_for(found, "the saved file to be the top hit", deadline=60.0)
    assert run.syncs()[-1].report.chunks_embedded >= 1


def test_watch_refuses_a_missing_folder_or_a_file(tmp_path):
    with pytest.raises(RagError, match="no such folder"):
        Watcher([tmp_path / "nope"], settings(tmp_path))
    (tmp_path / "f.md").write_text("x")
    with pytest.raises(RagError, match="not a folder"):
        Watcher([tmp_path / "f.md"], settings(tmp_path))


def test_the_cli_says_what_is_wrong_with_a_folder(tmp_path):
    from typer.testing import CliRunner

    from rag.cli import app

    result = CliRunner().invoke(app, ["watch", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 1 and "no such folder" in result.stderr
    assert json.loads(result.stdout)["error"]["message"].endswith("(use --include to pick files in one)")


def test_an_index_inside_the_watched_folder_does_not_wake_the_watcher(tmp_path, watching, monkeypatch):
    from rag import ingestion

    docs = make_folder(tmp_path / "docs")
    calls: list[int] = []
    real = ingestion.ingest_inputs
    monkeypatch.setattr(ingestion, "ingest_inputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    run = watching(docs, settings=settings(tmp_path, index=str(docs / "index")))
    before = len(calls)
    (docs / "one.md").write_text("One more file about ibexes.\n")
    wait_for(lambda: "one.md" in index_state(run.watcher.settings), "the save")
    time.sleep(DEBOUNCE * 4)  # the commit's own files changed meanwhile
    assert len(calls) == before + 1


def test_an_index_built_with_other_settings_stops_the_watcher_at_once(tmp_path):
    docs = make_folder(tmp_path / "docs")
    ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    watcher = Watcher([docs], settings(tmp_path, chunk_tokens=64), embedder=HashEmbedder(), debounce=DEBOUNCE)
    with pytest.raises(RagError, match="--chunk-tokens 32"):
        watcher.run()
