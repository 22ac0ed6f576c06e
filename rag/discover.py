"""Inputs -> the files to ingest, each with its identity: the folder it was found in and
its path there (rag/identity.py turns that into the name the index records).

A folder is walked recursively (hidden entries and editor or download temporaries
skipped, symlinked folders not followed, so loops cannot occur); a file in it is
identified by its folder and its path relative to that folder. A file given directly
is identified by its absolute path. `include`/`exclude` globs filter
the files found in folders, matched against the relative path and, for patterns
without a "/", against the file name too. Files of a type no loader reads are counted by
suffix, so the report can say what was left out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Sequence

from .errors import RagError
from .loaders import is_supported, skip_reason
from .types import FileFailure


# Names that are never documents: editor swap, backup, lock and autosave files, partial
# downloads, and system litter. Hidden names (a leading ".") are skipped besides.
_TEMPORARY_SUFFIXES = (".swp", ".swo", ".swx", ".tmp", ".temp", ".part", ".partial", ".crdownload", ".download",
                       ".kate-swp")
_TEMPORARY_NAMES = frozenset({"4913", "thumbs.db", "desktop.ini"})  # 4913: vim's write probe


def is_temporary(name: str) -> bool:
    """Whether a file name is one no folder walk or watcher ever indexes."""
    lower = name.lower()
    return (lower.startswith((".", "~$", ".#")) or lower.endswith(("~", *_TEMPORARY_SUFFIXES))
            or (lower.startswith("#") and lower.endswith("#")) or lower in _TEMPORARY_NAMES)


@dataclass(frozen=True)
class Input:
    path: Path  # on disk
    source: str  # recorded name: the relative path until rag/identity.py names it
    root: str  # the folder it was found in ("" for a file given directly)
    relative: str  # its path in that folder (the absolute path for a file given directly)


@dataclass(frozen=True)
class Found:
    inputs: list[Input]  # the supported files, sorted by recorded name
    roots: list[str]  # the folders walked
    skipped: dict[str, int]  # files no loader reads, counted by suffix ("" for none)
    skipped_files: list[FileFailure] = field(default_factory=list)  # each of them, by path, with the reason


def matches(relative: str, pattern: str) -> bool:
    if fnmatch(relative, pattern):
        return True
    return "/" not in pattern and fnmatch(relative.rsplit("/", 1)[-1], pattern)


def discover(paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Found:
    """The supported files under `paths`, the roots that were walked, and what was left out.

    Raises:
        RagError: a path does not exist or names an unsupported single file.
    """
    found: list[Input] = []
    roots: list[str] = []
    skipped: dict[str, int] = {}
    skipped_files: list[FileFailure] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise RagError(f"{raw}: no such file or folder")
        if path.is_dir():
            root = path.resolve()
            roots.append(str(root))
            found.extend(select(walk(root), include, exclude, skipped, skipped_files))
        elif path.is_file():
            if not is_supported(path):
                raise RagError(f"{raw}: {skip_reason(path)}")
            absolute = str(path.resolve())
            found.append(Input(path, absolute, "", absolute))
        else:
            raise RagError(f"{raw}: not a regular file or folder")
    unique = {(i.root, i.relative): i for i in found}
    return Found(sorted(unique.values(), key=lambda i: (i.relative, i.root)), roots, dict(sorted(skipped.items())),
                 sorted(skipped_files, key=lambda f: f.path))


def select(items: Iterable[Input], include: Sequence[str], exclude: Sequence[str],
           skipped: dict[str, int] | None = None, skipped_files: list[FileFailure] | None = None) -> list[Input]:
    """The files the globs let through that a loader reads; the others are counted in
    `skipped` by suffix and listed in `skipped_files` with the reason."""
    out = []
    for item in items:
        if (include and not any(matches(item.relative, p) for p in include)) or \
                any(matches(item.relative, p) for p in exclude):
            continue
        if is_supported(item.path):
            out.append(item)
        elif skipped is not None:
            suffix = item.path.suffix.lower()
            skipped[suffix] = skipped.get(suffix, 0) + 1
            if skipped_files is not None:
                skipped_files.append(FileFailure(item.relative, skip_reason(item.path)))
    return out


def walk(root: Path, under: Path | None = None) -> list[Input]:
    """Every regular file of `root` (or of its sub-folder `under`), identified by `root`."""
    out = []
    for dirpath, dirnames, filenames in os.walk(under or root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if is_temporary(name):
                continue
            path = Path(dirpath) / name
            try:
                mode = path.stat().st_mode  # follows a file symlink; a dangling one fails
            except OSError:
                continue
            if stat.S_ISREG(mode):
                relative = path.relative_to(root).as_posix()
                out.append(Input(path, relative, str(root), relative))
    return out
