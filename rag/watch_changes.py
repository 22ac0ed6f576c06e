"""What the watcher makes of changed paths: which files to sync, what part of the index
they speak for, which files are still being written, and which failures to retry.

Pure functions and one small record of file sizes and times; rag/watch.py owns the
threads and the timing. A changed path stands for everything under it: a folder that
appeared is walked, a path that is gone takes its index entries (or a whole folder's)
with it, a changed file is hashed again (unchanged content costs nothing more).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .discover import Input, is_temporary, select, walk
from .manifest import FileRecord
from .types import FileFailure

# Failures that say nothing about the file's content: it was locked, moved or being
# replaced while it was read. They are tried again by themselves; any other failure
# waits for the file to change.
_TRANSIENT = ("permission denied", "file vanished", "cannot read", "timed out")

Signature = tuple[int, int]  # size, mtime in ns


@dataclass(frozen=True)
class Touched:
    """A changed path under one watched folder; relative "" is the folder itself."""

    root: Path
    relative: str

    @property
    def path(self) -> Path:
        return self.root / self.relative if self.relative else self.root


@dataclass(frozen=True)
class Batch:
    """One sync's worth of work: the files to hash (and load if changed) and the paths
    whose index entries they replace."""

    inputs: tuple[Input, ...] = ()
    scopes: tuple[Touched, ...] = ()
    signatures: Mapping[Path, Signature] = field(default_factory=dict)  # what each input looked like when taken

    def in_scope(self) -> Callable[[FileRecord], bool]:
        """Whether an index entry lies under one of the changed paths."""
        whole = {str(t.root) for t in self.scopes if not t.relative}
        exact = {(str(t.root), t.relative) for t in self.scopes}
        prefixes = [(str(t.root), t.relative + "/") for t in self.scopes if t.relative]

        def accepts(record: FileRecord) -> bool:
            if record.root in whole or (record.root, record.relative) in exact:
                return True
            return any(record.root == r and record.relative.startswith(p) for r, p in prefixes)

        return accepts


def touched(path: Path, roots: Sequence[Path]) -> list[Touched]:
    """The watched folders a changed path lies in, with its path in each; none for a
    hidden or temporary path, which no walk would find either."""
    out = []
    for root in roots:
        if path != root and root not in path.parents:
            continue
        relative = path.relative_to(root).as_posix() if path != root else ""
        parts = relative.split("/") if relative else []
        if any(p.startswith(".") for p in parts) or (parts and is_temporary(parts[-1])):
            continue
        out.append(Touched(root, relative))
    return out


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def collect(changes: Iterable[Touched], include: Sequence[str], exclude: Sequence[str]) -> Batch:
    """The batch for these changed paths: a folder is walked, a file taken as it is, and
    every path (existing or not) scopes the entries under it."""
    inputs: list[Input] = []
    scopes: list[Touched] = []
    seen: set[tuple[Path, str]] = set()
    for change in changes:
        scopes.append(change)
        path = change.path
        if path.is_dir():
            found = walk(change.root, path if change.relative else None)
        elif path.is_file():
            found = [Input(path, change.relative, str(change.root), change.relative)]
        else:
            continue
        for item in select(found, include, exclude):
            if (change.root, item.relative) not in seen:
                seen.add((change.root, item.relative))
                inputs.append(item)
    signatures = {i.path: sig for i in inputs if (sig := signature(i.path)) is not None}
    return Batch(tuple(inputs), tuple(scopes), signatures)


class Settling:
    """Files are synced once their size and mtime have held still for `seconds`: a file
    still being written (or copied in) is not read half-way."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._seen: dict[Path, tuple[Signature | None, float]] = {}

    def note(self, path: Path, now: float) -> None:
        """A change event for `path`: its size and mtime now, and since when."""
        sig = signature(path)
        old = self._seen.get(path)
        if old is None or old[0] != sig:
            self._seen[path] = (sig, now)

    def wait_for(self, path: Path, now: float) -> float:
        """Seconds until `path` counts as settled (0: it has)."""
        sig = signature(path)
        old = self._seen.get(path)
        if old is None or old[0] != sig:
            self._seen[path] = (sig, now)
            return self.seconds if old is not None else 0.0
        return max(0.0, old[1] + self.seconds - now)

    def forget(self, paths: Iterable[Path], before: float = float("inf")) -> None:
        """Drop what is known of the paths, unless it was noted at `before` or later."""
        for path in paths:
            seen = self._seen.get(path)
            if seen is not None and seen[1] < before:
                del self._seen[path]


def retries(failed: Iterable[FileFailure], inputs: Sequence[Input]) -> list[Input]:
    """The inputs whose failure may pass by itself (locked, vanished mid-read). A failure
    names the file by its recorded name: its path in its folder, or that path under the
    folder's name (rag/identity.py)."""
    out = []
    for failure in failed:
        if not failure.reason.lower().startswith(_TRANSIENT):
            continue
        matches = [i for i in inputs if failure.path == i.relative or failure.path.endswith("/" + i.relative)]
        if matches:
            out.append(max(matches, key=lambda i: len(i.relative)))
    return out


def changed_since(batch: Batch) -> list[Input]:
    """Inputs that changed while the batch was read: the next batch reads them again."""
    return [i for i in batch.inputs if signature(i.path) != batch.signatures.get(i.path)]
