"""Which index entry a file on disk is, and the name the index records it under.

A file is identified by the folder it was found in (its root) and its path in that
folder; a file given directly has no root and is identified by its absolute path. The
index records each file under a readable name, its `source` (what search results,
citations, `--where source=` and question sets show): the path in its folder, as long
as no other file of the index has that name. A second folder's file with the same
path gets the folder's name in front (`notes/README.md` beside `README.md`), and files
of one run that share a path all get theirs (`docs/README.md`, `notes/README.md`).

A name, once given, stays: an entry is looked up by its identity first, so adding or
removing another folder never renames what is already indexed (question sets and
saved links keep working). The compromise: which of two same-named files keeps the
bare name depends on which was indexed first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from .discover import Input
from .manifest import FileRecord


def on_disk(source: str, record: FileRecord) -> Path:
    """Where an indexed file was read from."""
    _, relative = record.identity(source)
    return Path(record.root) / relative if record.root else Path(relative)


def name_inputs(inputs: Sequence[Input], files: Mapping[str, FileRecord]) -> list[Input]:
    """The inputs, each with the source it is recorded under: its entry's name when the
    index holds the file already, else a name no other file has."""
    known = {record.identity(source): source for source, record in files.items()}
    taken = set(files)
    named: list[Input | None] = []
    fresh: list[Input] = []
    for item in inputs:
        source = known.get((item.root, item.relative))
        named.append(replace(item, source=source) if source is not None else None)
        if source is None:
            fresh.append(item)
    shared = Counter(i.relative for i in fresh)
    chosen: dict[tuple[str, str], str] = {}
    for item in fresh:
        if item.root and (item.relative in taken or shared[item.relative] > 1):
            name = _prefixed(item, taken)
        elif item.relative in taken:  # a file given directly: its absolute path is its name
            name = _numbered(item.relative, taken)
        else:
            name = item.relative
        taken.add(name)
        chosen[(item.root, item.relative)] = name
    out = [n if n is not None else replace(i, source=chosen[(i.root, i.relative)]) for n, i in zip(named, inputs)]
    return out


def _prefixed(item: Input, taken: set[str]) -> str:
    """The relative path under the root's name, then under more of the root's path until
    the name is free (the root's absolute path, at worst)."""
    parts = PurePosixPath(Path(item.root).as_posix()).parts
    for n in range(1, len(parts) + 1):
        prefix = "/".join(p.strip("/") for p in parts[-n:] if p.strip("/"))
        name = f"{prefix}/{item.relative}" if prefix else item.relative
        if name not in taken:
            return name
    return _numbered(f"{Path(item.root).as_posix().rstrip('/')}/{item.relative}", taken)


def _numbered(name: str, taken: set[str]) -> str:
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def find_moves(
    todo: list[tuple[Input, str]], removed: list[str], files: Mapping[str, FileRecord],
) -> tuple[list[tuple[str, Input]], list[tuple[Input, str]], list[str]]:
    """Pair new files (with their SHA-256) with gone ones of the same content and type:
    such a file moved, and keeps its chunks and vectors under its new name (no loading,
    no embedding). Returns the moves (old name, file), what is left to load, what is
    left to remove."""
    gone: dict[tuple[str, str], list[str]] = {}
    for source in removed:
        gone.setdefault((files[source].sha256, PurePosixPath(source).suffix.lower()), []).append(source)
    moved: list[tuple[str, Input]] = []
    left: list[tuple[Input, str]] = []
    for item, digest in todo:
        was = gone.get((digest, item.path.suffix.lower()))
        if was and item.source not in files:  # a file written over another is an update of that one
            moved.append((was.pop(0), item))
        else:
            left.append((item, digest))
    taken = {old for old, _ in moved}
    return moved, left, [s for s in removed if s not in taken]
