"""The sentence-transformers adapter: any local model directory, run with torch on the CPU.

torch and sentence-transformers are imported when the adapter is made (about five
seconds), never at module import, so `rag --help` and index inspection stay instant.
The model is always loaded from its directory with `local_files_only`, so nothing is
downloaded whatever the Hugging Face environment says; quieting the Hugging Face
libraries' progress bars and logs is the CLI's choice (rag/runtime.py), not this module's.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import MissingDependencyError, ModelNotFoundError
from .base import model_fingerprint, resolve_embed_model


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model directory, on the CPU."""

    def __init__(self, spec: str | None = None, threads: int | None = None) -> None:
        self.name, path = resolve_embed_model(spec)
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelNotFoundError(f"{path} does not look like a sentence-transformers model (no config.json)")
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
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
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
