"""Old home of the embedder protocol and factory, now in rag/embedders/."""
# Temporary re-export while issue 14 moves callers; removed at the end of the issue.

from __future__ import annotations

from .config import Settings
from .embedders import DEFAULT_EMBED_NAME, DEFAULT_EMBED_PACKAGE, Embedder, default_embed_path  # noqa: F401
from .embedders import make_embedder as _make_embedder
from .embedders import model_fingerprint, resolve_embed_model  # noqa: F401
from .embedders.torch import SentenceTransformerEmbedder  # noqa: F401


def make_embedder(spec: str | None = None, threads: int | None = None, runtime: str = "auto") -> Embedder:
    """The old signature of `rag.embedders.make_embedder(settings)`."""
    return _make_embedder(Settings(embed_model=spec, threads=threads, embed_runtime=runtime))
