"""The watch verb: folders that stay in sync with the index by themselves.

`Watcher(folders, settings).run()` first syncs each folder as `rag ingest` would, then
follows file-system events (watchfiles: inotify on Linux, or polling with `poll`).
Events are gathered until the folders have been quiet for `debounce` seconds; then the
changed paths are synced in one batch, committed as one ingest is (rag/ingestion.py
`ingest_inputs`), so a burst of saves becomes a few commits. The writer lock is held
only while a batch runs, so a manual `rag ingest` in between works.

A file is read once its size and mtime have held still (rag/watch_changes.py); one
that fails to load is reported and read again when it changes (or, when it was locked
or vanished mid-read, after a back-off); a batch that fails as a whole (the lock is
taken, the store is down) is tried again. A watched folder that disappears is
reported and its entries kept; when it comes back it is synced again. Nothing stops
the watcher but `stop()`.

Two threads: one follows the events (and restarts the watch when a folder goes or
comes back), the caller's runs the batches. `start()` runs the latter in a thread of
its own, for a server that watches while it serves. What happens is told to the
`on_event` callback as `WatchEvent`s, from the batch thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from . import ingestion
from .config import Settings, settings_for
from .embedders import Embedder
from .errors import IndexLockedError, RagError
from .manifest import now_iso
from .types import IngestReport
from .watch_changes import Batch, Settling, Touched, changed_since, collect, retries, touched
from .variant import with_index_variant

log = logging.getLogger(__name__)

_MAX_WAIT = 30.0  # a batch goes in after this long even if events never pause
_LOCK_RETRY = 1.0  # seconds between tries while another writer holds the lock
_BACKOFF = (2.0, 5.0, 15.0, 60.0)  # retries of a failed batch or a locked file
_TICK = 0.2  # how often the event thread looks up from the watch (stop, folders gone or back)


@dataclass(frozen=True)
class WatchEvent:
    """What the watcher did: "sync" (a batch went in: `report`), "missing" / "back" (a
    watched folder disappeared / came back: `path`), "error" (a batch failed and will be
    tried again: `message`), "watching" (the initial sync is done)."""

    event: str
    timestamp: str
    report: IngestReport | None = None
    initial: bool = False
    path: str = ""
    message: str = ""
    changes: int = 0  # changed paths the batch looked at

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.report.to_dict() if self.report else {}
        data.update(event=self.event, timestamp=self.timestamp)
        if self.event == "sync":
            data.update(initial=self.initial, changes=self.changes)
        if self.path:
            data["path"] = self.path
        if self.message:
            data["message"] = self.message
        return data


@dataclass
class _Pending:
    """Changed paths waiting for their batch, each with the earliest time it may go in."""

    due: dict[Touched, float] = field(default_factory=dict)
    last_event: float = 0.0
    first_event: float = 0.0
    attempts: dict[Touched, int] = field(default_factory=dict)  # back-off step of a retried path


class Watcher:
    """Keeps an index in sync with folders until `stop()`.

    Args:
        folders: the folders to watch (recursively), as `rag ingest` takes them.
        settings: the index and ingest settings (`settings_for` fills the rest).
        include, exclude, passwords: as for `rag ingest`.
        embedder: the embedder to use (default: the settings', loaded once, by `run`).
        debounce: seconds the folders must be quiet before a batch goes in.
        poll: poll every `poll` seconds instead of following file-system events.
        on_event: called with each WatchEvent, from the batch thread.
        max_wait: seconds after which changes go in even if events never pause.

    Raises:
        RagError: a folder does not exist or is a file.
    """

    def __init__(
        self, folders: Sequence[str | Path], settings: Settings | None = None, *, include: Sequence[str] = (),
        exclude: Sequence[str] = (), passwords: Sequence[str] = (), embedder: Embedder | None = None,
        debounce: float = 1.0, poll: float | None = None, on_event: Callable[[WatchEvent], None] | None = None,
        max_wait: float = _MAX_WAIT,
    ) -> None:
        self.roots: list[Path] = []
        for raw in folders:
            path = Path(raw).expanduser()
            if not path.is_dir():
                raise RagError(f"{raw}: {'not a folder' if path.exists() else 'no such folder'}; "
                               "rag watch follows folders (use --include to pick files in one)")
            if path.resolve() not in self.roots:
                self.roots.append(path.resolve())
        if not self.roots:
            raise RagError("no folder to watch")
        # Each batch is a small local ingest: a Ray engine (RAG_ENGINE=ray) would start and
        # stop a Ray instance per save, seconds each.
        self.settings = replace(settings_for(settings, None), engine="local")
        self.include, self.exclude, self.passwords = tuple(include), tuple(exclude), tuple(passwords)
        self.embedder = embedder
        self.debounce = debounce
        self.poll = poll
        self.max_wait = max_wait
        self.on_event = on_event
        self._settling = Settling(debounce)
        self._pending = _Pending()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._watching = threading.Event()  # set once the event thread's watch is in place
        self._present = {root: True for root in self.roots}
        self._thread: threading.Thread | None = None
        self._follower: threading.Thread | None = None
        self._notices: list[WatchEvent] = []
        self._busy = True  # until the initial sync is done

    # -- running ------------------------------------------------------------------------
    def start(self) -> None:
        """Run the watcher in a thread of its own (for a server); `stop()` ends it."""
        self._thread = threading.Thread(target=self.run, name="rag-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch in progress, if any (its commit goes in or not at all)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def idle(self) -> bool:
        """No batch running or waiting: everything seen so far is in the index and reported."""
        with self._cond:
            return not self._busy and not self._pending.due and self._watching.is_set()

    def run(self) -> None:
        """The initial sync, then a batch each time the folders have settled, until stop()."""
        from .watch_follow import follow

        self._follower = threading.Thread(target=follow, args=(self,), name="rag-watch-events", daemon=True)
        self._follower.start()
        try:
            if self.embedder is None:  # once, so that no batch waits for the model (ingestion's seam, for tests)
                self.embedder = ingestion.make_embedder(with_index_variant(
                    self.settings, ingestion.backend_for(self.settings)))
            self._watching.wait(10.0)  # changes from here on are seen; none is missed by the first sync
            self._sync([Touched(root, "") for root in self.roots], initial=True)
            self._emit(WatchEvent("watching", now_iso(), message=", ".join(map(str, self.roots))))
            while not self._stop.is_set():
                with self._cond:
                    self._busy = False
                changes = self._next_batch()
                if changes:
                    self._sync(changes)
        finally:
            self._stop.set()
            self._follower.join(5.0)

    # -- called by the event thread --------------------------------------------------------
    def changed(self, paths: Sequence[Path]) -> None:
        """Note changed paths (from the event thread)."""
        now = time.monotonic()
        own = (Path(self.settings.index_dir).resolve(), Path(self.settings.cache_dir).resolve())
        with self._cond:
            for path in paths:
                if any(path == d or d in path.parents for d in own):
                    continue  # the index's own writes (an index kept inside a watched folder)
                for t in touched(path, self.roots):
                    self._settling.note(t.path, now)
                    if not self._pending.due:
                        self._pending.first_event = now
                    self._pending.due[t] = now
                    self._pending.last_event = now
            self._cond.notify_all()

    def folder_state(self, root: Path, present: bool) -> None:
        """A watched folder went (present False) or came back (True): report it; one that
        came back is synced whole."""
        with self._cond:
            if self._present.get(root) == present:
                return
            self._present[root] = present
            self._notices.append(WatchEvent("back" if present else "missing", now_iso(), path=str(root)))
            if present:
                self._pending.due[Touched(root, "")] = time.monotonic()
                self._pending.last_event = time.monotonic()
            self._cond.notify_all()

    # -- batches ----------------------------------------------------------------------------
    def _next_batch(self) -> list[Touched]:
        """Wait until some changed paths are due and the folders are quiet; take them."""
        with self._cond:
            while not self._stop.is_set():
                self._flush_notices()
                now = time.monotonic()
                pending = self._pending
                quiet_at = pending.last_event + self.debounce
                forced = pending.due and now - pending.first_event >= self.max_wait
                ready = [t for t, due in pending.due.items() if due <= now]
                if ready and (now >= quiet_at or forced):
                    self._busy = True
                    for t in ready:
                        del pending.due[t]
                    if pending.due:
                        pending.first_event = now
                    return ready
                wake = min([*pending.due.values(), now + 1.0])
                if ready:
                    wake = max(wake, quiet_at)
                self._cond.wait(max(0.01, min(wake - now, 1.0)))
                self._flush_notices()
            return []

    def _flush_notices(self) -> None:
        """Report the folder notices; called holding `_cond` (once), which is let go while
        `on_event` runs, so a slow printer never holds up the event thread."""
        notices, self._notices = self._notices, []
        if not notices:
            return
        self._cond.release()
        try:
            for notice in notices:
                self._emit(notice)
        finally:
            self._cond.acquire()

    def _later(self, changes: Sequence[Touched], delay: float, backoff: bool = False) -> None:
        now = time.monotonic()
        with self._cond:
            for t in changes:
                step = self._pending.attempts.get(t, 0)
                wait = _BACKOFF[min(step, len(_BACKOFF) - 1)] if backoff else delay
                if backoff:
                    self._pending.attempts[t] = step + 1
                self._pending.due[t] = min(self._pending.due.get(t, now + wait), now + wait)
            self._cond.notify_all()

    def _settled(self, changes: list[Touched]) -> list[Touched]:
        """The changes whose file has held still; the others go back to wait for it."""
        now = time.monotonic()
        ready, waiting = [], []
        with self._cond:  # the event thread notes into the same bookkeeping
            for t in changes:
                wait = self._settling.wait_for(t.path, now) if t.relative else 0.0
                (waiting if wait > 0 else ready).append((t, wait))
        for t, wait in waiting:
            self._later([t], wait)
        return [t for t, _ in ready]

    def _sync(self, changes: list[Touched], initial: bool = False) -> None:
        # A folder that is gone keeps its entries: its changes wait for it to come back.
        changes = [t for t in changes if t.root.is_dir()]
        changes = changes if initial else self._settled(changes)
        if not changes:
            return
        started = time.monotonic()
        batch = collect(changes, self.include, self.exclude)
        try:
            report = ingestion.ingest_inputs(batch.inputs, batch.in_scope(), settings=self.settings,
                                             embedder=self.embedder, passwords=self.passwords)
        except IndexLockedError:
            self._later(changes, _LOCK_RETRY)  # a manual ingest or another writer: wait for it
            return
        except RagError as exc:
            if initial:  # other settings than the index's, a damaged index: say so, do not watch
                raise
            self._emit(WatchEvent("error", now_iso(), message=str(exc)))
            self._later(changes, 0, backoff=True)
            return
        except Exception as exc:  # a bug must not stop the watcher: say it, try again later
            log.exception("a watch batch failed")
            self._emit(WatchEvent("error", now_iso(), message=f"{type(exc).__name__}: {exc}"))
            self._later(changes, 0, backoff=True)
            return
        self._after(batch, changes, report, initial, started)

    def _after(self, batch: Batch, changes: list[Touched], report: IngestReport, initial: bool,
               started: float) -> None:
        retry = [_as_touched(i) for i in retries(report.failed, batch.inputs)]
        for t in set(changes) - set(retry):
            self._pending.attempts.pop(t, None)
        with self._cond:  # a change noted while the batch ran stays noted: its file may be mid-write
            self._settling.forget((t.path for t in changes), before=started)
        self._later([_as_touched(i) for i in changed_since(batch)], 0.0)  # changed while it was read
        self._later(retry, 0, backoff=True)
        if initial or report.added or report.updated or report.removed or report.moved or report.failed:
            self._emit(WatchEvent("sync", now_iso(), report=report, initial=initial, changes=len(changes)))

    def _emit(self, event: WatchEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a broken callback must not stop the watcher
            log.exception("the watch event callback failed")


def _as_touched(item: Any) -> Touched:
    return Touched(Path(item.root), item.relative)
