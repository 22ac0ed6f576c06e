"""Embedders: text -> unit vectors. The `Embedder` protocol and `make_embedder`, the
factory that picks an adapter from the settings.

    base.py   the protocol, model directories, fingerprints, token counting (shared)
    onnx.py   ONNX Runtime (the default: exported once with torch, same vectors)
    torch.py  sentence-transformers on torch (the fallback, and the exporter's reference)
    quantize.py  the int8 variant of an ONNX export (opt-in: embed_variant int8)
    cache.py  a content-hash cache of vectors wrapped around any embedder

Importing this package loads no numpy, torch or onnxruntime: the adapters are imported
when one is made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ConfigError, ModelNotFoundError, RagError
from .base import (
    DEFAULT_EMBED_NAME,
    DEFAULT_EMBED_PACKAGE,
    Embedder,
    count_tokens_with,
    counting_tokenizer,
    default_embed_path,
    model_fingerprint,
    resolve_embed_model,
    split_variant,
    variant_name,
)

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EMBED_NAME", "DEFAULT_EMBED_PACKAGE", "Embedder", "count_tokens_with", "counting_tokenizer",
    "default_embed_path", "make_embedder", "model_fingerprint", "resolve_embed_model", "split_variant", "variant_name",
]


def make_embedder(settings: "Settings") -> Embedder:
    """The embedder for `settings.embed_model` with `threads`: ONNX Runtime unless
    `embed_runtime` is "torch"; "auto" falls back to torch when the ONNX path cannot run
    the model. The ONNX export is kept under `settings.cache_dir`.

    Raises:
        ModelNotFoundError: the model directory is missing or cannot be loaded.
        RagError: with runtime "onnx", the ONNX path cannot run the model.
    """
    from ..config import DEFAULT_EMBED_VARIANT

    spec, threads, variant = settings.embed_model, settings.threads, settings.embed_variant
    if variant is None:  # the default (DEFAULT_EMBED_VARIANT), fp32 on torch
        variant = "fp32" if settings.embed_runtime == "torch" else DEFAULT_EMBED_VARIANT
    if variant != "fp32" and settings.embed_runtime == "torch":
        raise ConfigError(f"the {variant} embedder runs on ONNX Runtime only: drop embed_runtime=torch "
                          "or use embed_variant=fp32")
    if settings.embed_runtime != "torch":
        from .onnx import OnnxEmbedder

        try:
            return OnnxEmbedder(spec, threads, cache_dir=settings.cache_dir, variant=variant)
        except ModelNotFoundError:
            raise
        except RagError as exc:
            if settings.embed_runtime == "onnx":
                raise
            log.warning("embedding with torch%s: %s", " in fp32 (int8 runs on ONNX Runtime only)" * (variant != "fp32"),
                        exc)
    from .torch import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(spec, threads)
