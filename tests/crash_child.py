"""The child process of test_crash.py: one ingest (or one held writer lock) for the parent to SIGKILL.

    python crash_child.py '{"mode": "ingest", "docs": ..., "index": ..., "markers": ..., "pause_at": ..., "delay": 0.0}'
    python crash_child.py '{"mode": "lock", "index": ..., "markers": ..., "pause_at": "locked"}'

Every named point the run passes leaves an empty file of that name in `markers`; at the
point `pause_at` the child leaves its marker and then sleeps, so the parent can kill it
exactly there. The points of an ingest, in order:

    started           imports done, nothing touched yet
    writer-created    lock held, the next generation's directory made (metadata copied)
    embed-N           the N-th embed call starts (N-1 batches already in the writer)
    commit            FaissWriter.commit starts
    manifest-write    vectors.faiss written, manifest.json not yet
    current-write     the new generation complete and fsynced, CURRENT not touched
    current-tmp       CURRENT.tmp written, os.replace not done
    current-replaced  CURRENT names the new generation; older ones not swept
    sweep             _sweep starts
    mid-sweep         the sweep has deleted its first file of an older generation
    swept             _sweep done
    done              ingest() returned (its report is in markers/report.json)

`delay` makes the embedder sleep that long per `batch_size` texts, so an uninterrupted
run takes long enough to be killed at chosen fractions of its duration.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from fakes import HashEmbedder  # noqa: E402
from rag.stores import faiss as store_mod  # noqa: E402
from rag.stores import faiss_files  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.ingestion import ingest  # noqa: E402

# Small chunks and batches: many chunks per file and an embed call every 8 chunks.
OVERRIDES = {"chunk_tokens": 32, "chunk_overlap": 4, "batch_size": 1}


def crash_settings(index_dir: str | Path) -> Settings:
    """The settings both the child and the test ingest with."""
    return Settings.load({"index_dir": str(index_dir), **OVERRIDES})


class Points:
    def __init__(self, folder: Path, pause_at: str | None) -> None:
        self.folder = folder
        self.pause_at = pause_at

    def reach(self, name: str) -> None:
        (self.folder / name).touch()
        if name == self.pause_at:
            time.sleep(300)  # the parent kills us here
            raise SystemExit(f"crash_child: nobody killed me at {name}")


class SlowHashEmbedder(HashEmbedder):
    """HashEmbedder (same name, same vectors) that sleeps `delay` per batch of texts."""

    def __init__(self, points: Points, delay: float) -> None:
        super().__init__()
        self.points = points
        self.delay = delay
        self.calls = 0

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.calls += 1
        self.points.reach(f"embed-{self.calls}")
        parts = [np.zeros((0, self.dim), dtype=np.float32)]
        for i in range(0, len(texts), batch_size):
            if self.delay:
                time.sleep(self.delay)
            parts.append(super().embed(texts[i:i + batch_size], batch_size, progress))
        return np.concatenate(parts)


def install_points(points: Points) -> None:
    """Wrap the store's write path so that each step reports (and maybe pauses at) its point."""
    writer = store_mod.FaissWriter
    orig_init, orig_commit, orig_sweep = writer.__init__, writer.commit, writer._sweep
    orig_write_atomic, orig_replace, orig_unlink = faiss_files._write_atomic, os.replace, os.unlink
    state = {"sweeping": False, "unlinked": False}

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        points.reach("writer-created")

    def commit(self: Any) -> Any:
        points.reach("commit")
        return orig_commit(self)

    def sweep(self: Any) -> None:
        points.reach("sweep")
        state["sweeping"] = True
        try:
            orig_sweep(self)
        finally:
            state["sweeping"] = False
        points.reach("swept")

    def write_atomic(path: Path, text: str) -> None:
        name = {store_mod.MANIFEST: "manifest-write", store_mod.CURRENT: "current-write"}.get(Path(path).name)
        if name:
            points.reach(name)
        orig_write_atomic(path, text)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        flip = Path(os.fsdecode(dst)).name == store_mod.CURRENT
        if flip:
            points.reach("current-tmp")
        orig_replace(src, dst, **kwargs)
        if flip:
            points.reach("current-replaced")

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        orig_unlink(path, *args, **kwargs)
        if state["sweeping"] and not state["unlinked"]:
            state["unlinked"] = True
            points.reach("mid-sweep")

    writer.__init__ = init  # type: ignore[method-assign]
    writer.commit = commit  # type: ignore[method-assign]
    writer._sweep = sweep  # type: ignore[method-assign]
    faiss_files._write_atomic = write_atomic  # type: ignore[assignment]
    os.replace = replace  # type: ignore[assignment]
    os.unlink = unlink  # type: ignore[assignment]


def main(cfg: dict[str, Any]) -> None:
    markers = Path(cfg["markers"])
    markers.mkdir(parents=True, exist_ok=True)
    points = Points(markers, cfg.get("pause_at"))
    if cfg["mode"] == "lock":
        with store_mod.write_lock(Path(cfg["index"])):
            points.reach("locked")
        return
    points.reach("started")
    install_points(points)
    embedder = SlowHashEmbedder(points, float(cfg.get("delay", 0.0)))
    report = ingest([cfg["docs"]], settings=crash_settings(cfg["index"]), embedder=embedder)
    (markers / "report.json").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    points.reach("done")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
