"""The manifest: the record of how an index was built and what it holds.

Every backend stores one per commit (FAISS as `manifest.json` in the generation folder,
Milvus as rows of its meta collection) in the same JSON shape. This module owns that
shape, its version check and the one compatibility check used wherever an index is
opened or written: an index built with one embedder or chunking refuses another.

A `Manifest` is frozen. A writer works on a `Draft` (files, next id, backend entries)
and its commit turns the draft into the next `Manifest`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from .errors import IndexCorruptError, IndexMismatchError

FORMAT = "rag-index"
# 2: a lexical (BM25) index beside the vectors; 3: a file is identified by its folder
# and its path in it (FileRecord.relative), so two folders' README.md are two files.
FORMAT_VERSION = 3
READS = (2, 3)  # a version 2 manifest is read as version 3 (`_upgrade`): nothing is re-embedded
CHUNKER = "structure-v1"

# Keys the Manifest types itself; any other key (the FAISS "vectors" spec, Milvus's
# "milvus" section, "generation", "store", "migrated_from") belongs to the backend that
# wrote it and is carried through untouched in `Manifest.backend`.
_TYPED = ("format", "format_version", "embedder", "chunking", "files", "next_id", "chunks",
          "created_at", "updated_at", "last_ingest")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class FileRecord:
    """One stored file: its content hash and what it became.

    A file is identified by `root` (the folder it was found in, "" for a file given
    directly) and `relative` (its path in that folder, or its absolute path); the index
    records it under a readable name of its own (the key of `Manifest.files`, the chunks'
    `source`): rag/identity.py chooses it."""

    sha256: str
    chunks: int
    pages: int
    bytes: int
    root: str
    ingested_at: str
    relative: str = ""  # "" only in records built by hand: then the name is the relative path

    def identity(self, source: str) -> tuple[str, str]:
        return self.root, self.relative or source


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    dim: int
    max_tokens: int


@dataclass(frozen=True)
class Chunking:
    algorithm: str
    chunk_tokens: int
    chunk_overlap: int

    def describe(self) -> str:
        return f"chunks of {self.chunk_tokens} tokens overlapping {self.chunk_overlap} ({self.algorithm})"


@dataclass(frozen=True)
class Manifest:
    embedder: EmbedderInfo
    chunking: Chunking
    files: Mapping[str, FileRecord] = field(default_factory=dict)  # read-only by convention
    next_id: int = 0
    chunks: int = 0
    created_at: str = ""
    updated_at: str | None = None
    last_ingest: str | None = None
    backend: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Manifest":
        """The manifest a parsed JSON object holds; IndexCorruptError naming `where` if it
        is not one this rag reads."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise IndexCorruptError(f"{where} is not a rag index manifest")
        if data.get("format_version") not in READS:
            raise IndexCorruptError(
                f"{where} has format version {data.get('format_version')}, this rag reads "
                f"{', '.join(map(str, READS))}; rebuild the index with --rebuild"
            )
        try:
            return cls(
                embedder=EmbedderInfo(**data["embedder"]),
                chunking=Chunking(**data["chunking"]),
                files={k: _record(k, v) for k, v in data.get("files", {}).items()},
                next_id=int(data.get("next_id", 0)),
                chunks=int(data.get("chunks", 0)),
                created_at=str(data.get("created_at", "")),
                updated_at=data.get("updated_at"),
                last_ingest=data.get("last_ingest"),
                backend={k: v for k, v in data.items() if k not in _TYPED},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"{where} is damaged ({type(exc).__name__}: {exc}); "
                                    "rebuild the index with --rebuild") from None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **copy.deepcopy(dict(self.backend)),
            "format": FORMAT,
            "format_version": self.format_version,
            "embedder": asdict(self.embedder),
            "chunking": asdict(self.chunking),
            "files": {k: _record_json(v) for k, v in self.files.items()},
            "next_id": self.next_id,
            "chunks": self.chunks,
            "created_at": self.created_at,
        }
        for key in ("updated_at", "last_ingest"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def check_compatible(
        self, location: str, embedder: str | None = None, dim: int | None = None, chunking: Chunking | None = None,
    ) -> None:
        """Refuse to mix this index with another embedder or chunking.

        Raises:
            IndexMismatchError: saying what the index was built with and what to do.
        """
        built = self.embedder
        if (embedder is not None and embedder != built.name) or (dim is not None and dim != built.dim):
            asked = embedder or built.name
            raise IndexMismatchError(
                f"the index at {location} was built with embedder {built.name} ({built.dim} dims), not {asked}"
                f"{f' ({dim} dims)' if dim else ''}; use the same --embed-model and --embed-variant, re-embed it with "
                "`rag reindex`, or rebuild with --rebuild"
            )
        if chunking is not None and chunking != self.chunking:
            c = self.chunking
            raise IndexMismatchError(
                f"the index at {location} was built with {c.describe()}, not {chunking.describe()}; "
                f"use --chunk-tokens {c.chunk_tokens} --chunk-overlap {c.chunk_overlap}, or rebuild with --rebuild"
            )


def _record(source: str, data: dict[str, Any]) -> FileRecord:
    """A file's record; one written by format 2 gets the relative path it was named by
    (format 2 named a file by its path in its folder, or by its absolute path)."""
    return FileRecord(**{"relative": source, **data})


def new_manifest(embedder: EmbedderInfo, chunking: Chunking) -> Manifest:
    return Manifest(embedder=embedder, chunking=chunking, created_at=now_iso())


class Draft:
    """A writer's working copy of a manifest: what changes while a batch goes in."""

    def __init__(self, base: Manifest) -> None:
        self.base = base
        self.files: dict[str, FileRecord] = dict(base.files)
        self.next_id = base.next_id
        self.backend: dict[str, Any] = copy.deepcopy(dict(base.backend))
        self.last_ingest = base.last_ingest

    def new_ids(self, n: int, given: Any = None) -> np.ndarray:
        """Chunk ids for n new chunks: the next free ones, or `given` (kept from another
        index); either way next_id moves past them, so ids only ever grow."""
        first = self.next_id
        ids = np.arange(first, first + n, dtype=np.int64) if given is None else np.asarray(given, dtype=np.int64)
        if len(ids) != n:
            raise ValueError("one id per chunk")
        if n:
            self.next_id = max(first, int(ids.max()) + 1)
        return ids

    def build(self, chunks: int) -> Manifest:
        return replace(self.base, files=dict(self.files), next_id=self.next_id, chunks=chunks, updated_at=now_iso(),
                       last_ingest=self.last_ingest, backend=copy.deepcopy(self.backend))


def _record_json(record: FileRecord) -> dict[str, Any]:
    """A FileRecord as JSON (what asdict gives, without its recursion: a manifest of
    10,000 files is written at every commit)."""
    return dict(vars(record))
