"""The watcher's event thread: follow the watched folders with watchfiles and hand every
changed path to the Watcher (rag/watch.py).

watchfiles (Rust notify: inotify on Linux, FSEvents, ReadDirectoryChangesW, or a poller)
watches what exists when it starts; a watched folder that is deleted stops its events,
and one created again is not seen. So every `_TICK` the thread checks that each folder
is still there, and when one went or came back it tells the Watcher and starts the
watch again on the folders present.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .watch import Watcher

log = logging.getLogger(__name__)

_TICK_MS = 200  # the watch returns this often when nothing happens, to look up
_GROUP_MS = 100  # changes arriving within this of each other come in one set


def follow(watcher: "Watcher") -> None:
    """Until the watcher stops: watch the folders that exist, restart when that set changes."""
    try:
        import watchfiles
    except ImportError:  # a dependency: only a broken install lacks it
        log.error("rag watch needs the watchfiles package: pip install watchfiles")
        watcher._watching.set()
        raise
    failures = 0
    while not watcher.stopped:
        present = _present(watcher)
        if not present:
            watcher._watching.set()  # nothing to watch until a folder comes back
            watcher._stop.wait(_TICK_MS / 1000)
            continue
        try:
            _watch(watcher, watchfiles, present)
            failures = 0
        except Exception as exc:  # e.g. the inotify watch limit: say so, try again
            failures += 1
            log.warning("watching %s failed (%s: %s); trying again%s", ", ".join(map(str, present)),
                        type(exc).__name__, exc, "" if watcher.poll else " (on a network drive, use --poll)")
            watcher._watching.set()
            watcher._stop.wait(min(30.0, 1.0 * failures))


def _present(watcher: "Watcher") -> list[Path]:
    present = []
    for root in watcher.roots:
        there = root.is_dir()
        watcher.folder_state(root, there)
        if there:
            present.append(root)
    return present


def _watch(watcher: "Watcher", watchfiles: object, present: list[Path]) -> None:
    """One watch over the folders present; returns when one of them goes or another comes."""
    options = {}
    if watcher.poll is not None:
        options = {"force_polling": True, "poll_delay_ms": max(1, int(watcher.poll * 1000))}
    changes_of = watchfiles.watch(  # type: ignore[attr-defined]
        *present, watch_filter=None, debounce=_GROUP_MS * 4, step=_GROUP_MS, stop_event=watcher._stop,
        rust_timeout=_TICK_MS, yield_on_timeout=True, raise_interrupt=False, ignore_permission_denied=True,
        **options,
    )
    try:
        for changes in changes_of:
            watcher._watching.set()  # the first set (empty, on the first timeout) means the watch is in place
            if changes:
                watcher.changed([Path(path) for _, path in changes])
            if [r for r in watcher.roots if r.is_dir()] != present:
                for root in watcher.roots:
                    watcher.folder_state(root, root.is_dir())
                return
            if watcher.stopped:
                return
    finally:
        changes_of.close()
