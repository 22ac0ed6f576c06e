"""A content-hash cache of embeddings, so the same text is never embedded twice.

Ingest wraps its embedder in `CachedEmbedder`: each text's SHA-256 is looked up in a
SQLite file per embedder (under the cache folder, shared by every index built with that
model) and only the texts not found are embedded, then stored. A re-ingest after an
edit embeds only the chunks that changed, and `--rebuild` embeds nothing it has seen.

The cache is an accelerator, never a source of truth: if its file cannot be opened or
read, ingest logs a warning and embeds as if it were empty.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .base import Embedder

log = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (hash BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
_LOOKUP = 500  # hashes per SELECT (SQLite caps the number of parameters)


def cache_file(folder: Path, embedder: Embedder) -> Path:
    """One file per embedder: its name, dimension and, when it has one, the fingerprint
    of its model files, so a model replaced in place starts a new cache."""
    fingerprint = getattr(embedder, "fingerprint", "")
    key = hashlib.sha256(f"{embedder.name}\n{embedder.dim}\n{fingerprint}".encode()).hexdigest()[:20]
    return folder / "embeddings" / f"{key}.sqlite"


class CachedEmbedder:
    """An Embedder that answers from the cache first; the same interface as the one it wraps."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        self.path = path
        self.tokenizer_file = getattr(inner, "tokenizer_file", None)
        self.hits = 0  # texts answered from the cache, for the report
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            self._disable(exc)

    def _disable(self, exc: Exception) -> None:
        log.warning("embedding cache %s is not usable (%s); embedding without it", self.path, exc)
        if self._db is not None:
            self._db.close()
        self._db = None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in texts]
        found = self._get(keys)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, k in enumerate(keys) if k not in found]
        for i, k in enumerate(keys):
            if k in found:
                out[i] = found[k]
        self.hits += len(texts) - len(todo)
        if progress and len(todo) < len(texts):
            progress(len(texts) - len(todo))
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo], batch_size, progress)
            out[todo] = fresh
            self._put({keys[i]: fresh[n] for n, i in enumerate(todo)})
        return out

    def _get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        if self._db is None or not keys:
            return {}
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for i in range(0, len(unique), _LOOKUP):
                part = unique[i : i + _LOOKUP]
                rows = self._db.execute(
                    f"SELECT hash, vector FROM vectors WHERE hash IN ({','.join('?' * len(part))})", part
                )
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape == (self.dim,):
                        found[key] = vec
        except sqlite3.Error as exc:
            self._disable(exc)
            return {}
        return found

    def _put(self, items: dict[bytes, np.ndarray]) -> None:
        if self._db is None:
            return
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (hash, vector) VALUES (?, ?)",
                [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
            self._db.commit()
        except sqlite3.Error as exc:
            self._disable(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
