"""Deterministic stand-ins for the embedder and the LLM, injected through the pipeline's seams."""

from __future__ import annotations

import hashlib
from typing import Callable, Iterator, Sequence

import numpy as np


def _words(text: str) -> list[str]:
    return text.split()


class HashEmbedder:
    """Bag-of-words vectors from hashed lowercased words: texts sharing words are similar."""

    def __init__(self, name: str = "test/hash-embedder", dim: int = 64, max_tokens: int = 254) -> None:
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.embedded: list[str] = []  # every text ever embedded, in order

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_words(t)) for t in texts]

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in _words(text.lower()):
            digest = hashlib.sha256(word.encode("utf-8")).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:  # no words: a fixed unit vector
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.embedded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._vector(text)
        if progress and texts:
            progress(len(texts))
        return out


class EchoGenerator:
    """Counts words as tokens, renders `role: content` lines and always answers citing [1]."""

    ANSWER = "The sources say so [1]."

    def __init__(self, context_size: int = 4096) -> None:
        self.name = "echo"
        self.context_size = context_size
        self.prompts: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(_words(text))

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def stream(self, prompt: str, max_tokens: int, temperature: float, n_ctx: int) -> Iterator[str]:
        self.prompts.append(prompt)
        for piece in ("The sources ", "say so ", "[1]."):
            yield piece
