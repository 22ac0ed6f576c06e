"""The writes the web page asks for: ingest a folder, re-sync the index's folders, remove a
file. One job at a time on a thread of its own (the index has one writer); the page
polls a job's progress. The jobs of this server's life are kept (the newest MAX_JOBS)
so the library can show which files failed and why: the index itself records only the
files that went in, so failures of an ingest run elsewhere are not known here.

Paths typed into the page are resolved (symlinks followed) and must lie under one of
the folders `--allow-root` names; the server never ingests anything else.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import Settings
from ..errors import ConfigError, RagError
from ..identity import on_disk
from ..ingestion import WRITER_WAIT, chunking_of, ingest
from ..inventory import remove
from ..types import IngestReport, Progress
from .follower import IndexFollower

MAX_JOBS = 50


def within(path: str, roots: Sequence[str]) -> Path:
    """`path` resolved, if it lies under one of `roots`.

    Raises:
        ConfigError: it does not (or no root is allowed), naming the roots.
    """
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        top = Path(root).expanduser().resolve()
        if resolved == top or top in resolved.parents:
            return resolved
    allowed = ", ".join(roots) if roots else "none (start rag serve with --allow-root DIR)"
    raise ConfigError(f"{path} is not under a folder this server may ingest from; allowed: {allowed}")


def create_empty(settings: Settings) -> str:
    """Commit an index with no files (the settings' embedder and chunking), so that a
    server can start before anything is ingested and the page can ingest the first
    folder; returns where it is.

    Raises:
        RagError: the embedder cannot be loaded, or another writer holds the index.
    """
    from ..embedders import make_embedder
    from ..manifest import EmbedderInfo, new_manifest
    from ..stores import backend_for, transaction

    embedder = make_embedder(settings)
    backend = backend_for(settings)
    with transaction(backend) as tx:
        tx.begin(new_manifest(EmbedderInfo(embedder.name, embedder.dim, embedder.max_tokens), chunking_of(settings)),
                 fresh=True)
        tx.commit()
    return backend.location


@dataclass
class Job:
    """One write and how far it got; mutable, as its progress moves."""

    id: int
    kind: str  # "ingest", "sync" or "remove"
    paths: tuple[str, ...]
    state: str = "queued"  # then "running", "done" or "failed"
    stage: str = ""  # "load" or "embed" while running
    done: int = 0
    total: int = 0
    detail: str = ""  # the file being loaded
    report: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "paths": list(self.paths), "state": self.state,
                "stage": self.stage, "done": self.done, "total": self.total, "detail": self.detail,
                "report": self.report, "error": self.error, "created": round(self.created, 3),
                "finished": None if self.finished is None else round(self.finished, 3)}


class Jobs:
    """The write jobs of one server, run one at a time."""

    def __init__(self, follower: IndexFollower) -> None:
        self.follower = follower
        self._lock = threading.Lock()
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-write")

    def ingest(self, folder: Path) -> Job:
        """Ingest a file or folder (already checked against the allowed roots)."""
        if not folder.exists():
            raise ConfigError(f"{folder} does not exist on the server's machine")
        return self._submit("ingest", (str(folder),), lambda job: self._ingest(job, [folder]))

    def sync(self) -> Job:
        """Ingest again every folder (and lone file) the index holds files from."""
        return self._submit("sync", (), self._sync)

    def remove(self, source: str) -> Job:
        return self._submit("remove", (source,), lambda job: self._remove(job, source))

    def get(self, ident: int) -> Job | None:
        with self._lock:
            return self._jobs.get(ident)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def failures(self) -> list[dict[str, str]]:
        """Files whose latest ingest here failed, with the reason, oldest job first; a later
        ingest that took the file in clears it."""
        failed: dict[str, str] = {}
        for job in self.all():
            report = job.report or {}
            for item in report.get("failed", []):
                failed[item["path"]] = item["reason"]
            paths = report.get("paths", {})
            for path in [*paths.get("added", []), *paths.get("updated", []), *paths.get("removed", [])]:
                failed.pop(path, None)
        return [{"path": p, "reason": r} for p, r in failed.items()]

    def skipped(self) -> dict[str, int]:
        """Files no loader reads, by suffix, as the newest ingest here counted them."""
        for job in reversed(self.all()):
            if job.report and job.kind != "remove":
                return dict(job.report.get("skipped", {}))
        return {}

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, kind: str, paths: tuple[str, ...], work: Callable[[Job], None]) -> Job:
        job = Job(next(self._ids), kind, paths)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                self._jobs.popitem(last=False)
        self._executor.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        job.state = "running"
        try:
            work(job)
            job.state = "done"
        except RagError as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001  (a job's crash is its own; the server goes on)
            job.error, job.state = f"internal error: {type(exc).__name__}: {exc}", "failed"
        finally:
            job.stage, job.detail, job.finished = "", "", time.time()

    def _ingest(self, job: Job, paths: list[Path]) -> None:
        def progress(p: Progress) -> None:
            job.stage, job.done, job.total, job.detail = p.stage, p.done, p.total, p.detail

        report: IngestReport = ingest(paths, settings=self.follower.settings, embedder=self.follower.embedder,
                                      progress=progress, lock_wait=WRITER_WAIT)
        job.report = report.to_dict()

    def _sync(self, job: Job) -> None:
        with self.follower.lease() as index:
            files = index.store.files()
        places = sorted({str(Path(r.root)) if r.root else str(on_disk(s, r)) for s, r in files.items()})
        present = [Path(p) for p in places if Path(p).exists()]
        job.paths = tuple(places)
        if not present:
            raise ConfigError("none of the index's folders or files exist any more: nothing to re-sync")
        self._ingest(job, present)

    def _remove(self, job: Job, source: str) -> None:
        removed = remove([source], self.follower.settings)
        job.report = {"removed": len(removed), "paths": {"removed": removed}}
