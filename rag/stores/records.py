"""What every store backend records the same way: the manifest's format and checks,
and the per-file record kept in it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import IndexCorruptError

FORMAT = "rag-index"
FORMAT_VERSION = 2  # 2: a lexical (BM25) index beside the vectors


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    chunks: int
    pages: int
    bytes: int
    root: str
    ingested_at: str


def check_manifest(data: Any, where: str) -> dict[str, Any]:
    """A parsed manifest, or IndexCorruptError naming `where` if it is not one this rag reads."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IndexCorruptError(f"{where} is not a rag index manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{where} has format version {data.get('format_version')}, this rag reads {FORMAT_VERSION}; "
            "rebuild the index with --rebuild"
        )
    return data


def new_ids(manifest: dict[str, Any], n: int, given: Any = None) -> np.ndarray:
    """Chunk ids for n new chunks: the next free ones, or `given` (kept from another index);
    either way the manifest's next_id moves past them, so ids only ever grow."""
    first = int(manifest["next_id"])
    ids = np.arange(first, first + n, dtype=np.int64) if given is None else np.asarray(given, dtype=np.int64)
    if len(ids) != n:
        raise ValueError("one id per chunk")
    if n:
        manifest["next_id"] = max(first, int(ids.max()) + 1)
    return ids
