"""Inputs -> the files to ingest, each with the name the index records for it.

A folder is walked recursively (hidden entries skipped, symlinked folders not followed,
so loops cannot occur); a file in it is named by its path relative to that folder.
A file given directly is named by its absolute path. `include`/`exclude` globs filter
the files found in folders, matched against the relative path and, for patterns
without a "/", against the file name too.
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


def matches(relative: str, pattern: str) -> bool:
    if fnmatch(relative, pattern):
        return True
    return "/" not in pattern and fnmatch(relative.rsplit("/", 1)[-1], pattern)


def discover(
    paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Input], list[str]]:
    """Return the supported files under `paths` and the roots that were walked.

    Raises:
        RagError: a path does not exist or names an unsupported single file.
    """
    found: list[Input] = []
    roots: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise RagError(f"{raw}: no such file or folder")
        if path.is_dir():
            root = path.resolve()
            roots.append(str(root))
            found.extend(
                i for i in _walk(root)
                if (not include or any(matches(i.source, p) for p in include))
                and not any(matches(i.source, p) for p in exclude)
            )
        elif path.is_file():
            if not is_supported(path):
                raise RagError(f"{raw}: unsupported file type {path.suffix or '(no suffix)'}")
            found.append(Input(path, str(path.resolve()), ""))
        else:
            raise RagError(f"{raw}: not a regular file or folder")
    unique = {i.source: i for i in found}
    return sorted(unique.values(), key=lambda i: i.source), roots


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
            if stat.S_ISREG(mode) and is_supported(path):
                out.append(Input(path, path.relative_to(root).as_posix(), str(root)))
    return out
