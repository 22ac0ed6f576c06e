"""Inputs -> the files to ingest, each with the name the index records for it.

A folder is walked recursively (hidden entries skipped, symlinked folders not followed,
so loops cannot occur); a file in it is named by its path relative to that folder.
A file given directly is named by its absolute path. `include`/`exclude` globs filter
the files found in folders, matched against the relative path and, for patterns
without a "/", against the file name too. Files of a type no loader reads are counted by
suffix, so the report can say what was left out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Sequence

from .errors import RagError
from .loaders import is_supported


@dataclass(frozen=True)
class Input:
    path: Path  # on disk
    source: str  # recorded name
    root: str  # the folder it was found in ("" for a file given directly)


@dataclass(frozen=True)
class Found:
    inputs: list[Input]  # the supported files, sorted by recorded name
    roots: list[str]  # the folders walked
    skipped: dict[str, int]  # files no loader reads, counted by suffix ("" for none)


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
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise RagError(f"{raw}: no such file or folder")
        if path.is_dir():
            root = path.resolve()
            roots.append(str(root))
            for item in _walk(root):
                if (include and not any(matches(item.source, p) for p in include)) or \
                        any(matches(item.source, p) for p in exclude):
                    continue
                if is_supported(item.path):
                    found.append(item)
                else:
                    suffix = item.path.suffix.lower()
                    skipped[suffix] = skipped.get(suffix, 0) + 1
        elif path.is_file():
            if not is_supported(path):
                raise RagError(f"{raw}: unsupported file type {path.suffix or '(no suffix)'}")
            found.append(Input(path, str(path.resolve()), ""))
        else:
            raise RagError(f"{raw}: not a regular file or folder")
    unique = {i.source: i for i in found}
    return Found(sorted(unique.values(), key=lambda i: i.source), roots, dict(sorted(skipped.items())))


def _walk(root: Path) -> list[Input]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                mode = path.stat().st_mode  # follows a file symlink; a dangling one fails
            except OSError:
                continue
            if stat.S_ISREG(mode):
                out.append(Input(path, path.relative_to(root).as_posix(), str(root)))
    return out
