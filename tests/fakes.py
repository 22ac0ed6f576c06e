"""Deterministic stand-ins for the embedder and the LLM, injected through the pipeline's seams."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from rag.config import Settings


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


# A small folder of documents and the settings the store and pipeline tests build it with.
TEXTS = {
    "cats.md": "# Cats\n\nCats purr loudly and sleep in the warm sun all afternoon.\n\n"
               "## Food\n\nCats eat fish and chicken twice a day.\n",
    "dogs.txt": "Dogs bark at the mailman. Dogs fetch sticks in the park every morning.\n",
    "sub/birds.md": "# Birds\n\nBirds sing at dawn and build nests from twigs.\n",
}
QUERIES = ["cats sleep in the sun", "dogs fetch sticks", "birds build nests", "fish and chicken", "mailman"]


def make_folder(root: Path, texts: dict[str, str] = TEXTS) -> Path:
    for name, text in texts.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def settings(tmp_path: Path, **kw) -> Settings:
    """Small chunks; no embedding cache, so every test sees every embedder call it causes."""
    # Settings.load: RAG_STORE picks the backend where a test module runs on both (test_pipeline.py).
    return Settings.load({"index_dir": tmp_path / "index", "chunk_tokens": kw.pop("chunk_tokens", 32),
                          "chunk_overlap": kw.pop("chunk_overlap", 4), "embed_cache": kw.pop("embed_cache", False), **kw})


class FakeReader:
    """A reader that knows the answer words: a passage scores the summed weight of those
    it holds (lowercased), -1.0 when it holds none. Records every call."""

    def __init__(self, answers: dict[str, float], threshold: float = 0.0, name: str = "test/fake-reader") -> None:
        self.answers = answers
        self.threshold = threshold
        self.name = name
        self.calls: list[tuple[str, list[str]]] = []

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((question, list(passages)))
        return [sum(w for word, w in self.answers.items() if word in p.lower()) or -1.0 for p in passages]


class SlowHashEmbedder(HashEmbedder):
    """The hash embedder taking `seconds` per text: keeps a Ray pipeline busy long enough
    for a test to take a node away in the middle of it. With `log`, it appends a line to
    that file for each text it starts to count ("load") or embed ("embed"): the Ray node
    it runs on, the step and the text."""

    def __init__(self, seconds: float = 0.02, log: Path | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.log = log

    def _note(self, step: str, texts) -> None:
        if self.log is not None:
            import ray

            node = ray.get_runtime_context().get_node_id()
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.writelines(f"{node}\t{step}\t{' '.join(t.split())}\n" for t in texts)

    def count_tokens(self, texts):
        self._note("load", texts)
        return super().count_tokens(texts)

    def embed(self, texts, batch_size=32, progress=None):
        import time

        self._note("embed", texts)
        time.sleep(self.seconds * len(texts))
        return super().embed(texts, batch_size, progress)
