"""Readers that run on torch, for users who bring their own: a sentence-transformers
CrossEncoder folder, or a Hugging Face question-answering folder (SQuAD 2.0 style).

torch, transformers and sentence-transformers are imported only when one is loaded, so
choosing the ONNX reader (or none) never costs their import. Both load from the folder
alone (local_files_only): nothing is downloaded.

Scores are log-odds, so 0 is the natural threshold (a folder's reader.json, or the
`reader_threshold` setting, may set another):
- CrossEncoder: its raw logit (one label), else the last label's logit minus the first's.
- QA model: the best answer span's start + end logits minus the null answer's (those of
  [CLS]), the SQuAD 2.0 rule, over half-overlapping windows of a long passage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import MissingDependencyError, ModelNotFoundError

LONGEST_ANSWER = 30  # tokens in an answer span, as SQuAD readers limit it


def load_torch_reader(folder: Path, threads: int | None = None) -> Any:
    """The reader a folder with a config.json holds: a QA model when its architecture
    says so, else a CrossEncoder."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {folder / 'config.json'}: {exc}") from None
    archs = config.get("architectures") or []
    if any(a.endswith("ForQuestionAnswering") for a in archs):
        return QuestionAnsweringReader(folder, threads)
    return CrossEncoderReader(folder, threads)


def _torch(threads: int | None) -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "this reader runs on torch, which is not installed: pip install torch sentence-transformers, "
            "or use an ONNX reader") from None
    if threads:
        torch.set_num_threads(threads)
    return torch


class CrossEncoderReader:
    """A sentence-transformers CrossEncoder: one forward pass per (question, passage)."""

    threshold = 0.0

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        self._torch = _torch(threads)
        try:
            from sentence_transformers import CrossEncoder
        except ImportError:
            raise MissingDependencyError("a CrossEncoder reader needs sentence-transformers: "
                                         "pip install sentence-transformers") from None
        try:
            self._model = CrossEncoder(str(folder), device="cpu", local_files_only=True)
        except Exception as exc:  # transformers raises OSError, ValueError, ... for a bad folder
            raise ModelNotFoundError(f"cannot load the CrossEncoder reader {folder}: {exc}") from None
        self.name = str(folder)

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        logits = self._model.predict([(question, p) for p in passages], activation_fn=self._torch.nn.Identity(),
                                     convert_to_numpy=True, show_progress_bar=False)
        if logits.ndim == 1:
            return [float(x) for x in logits]
        if logits.shape[1] == 1:
            return [float(x) for x in logits[:, 0]]
        return [float(row[-1] - row[0]) for row in logits]


class QuestionAnsweringReader:
    """An extractive QA model: the best span's score over the null answer's."""

    threshold = 0.0

    def __init__(self, folder: Path, threads: int | None = None, max_length: int = 384) -> None:
        self._torch = _torch(threads)
        try:
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer
        except ImportError:
            raise MissingDependencyError(
                "a question-answering reader needs transformers: pip install transformers") from None
        try:
            self._tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = AutoModelForQuestionAnswering.from_pretrained(str(folder), local_files_only=True).eval()
        except Exception as exc:
            raise ModelNotFoundError(f"cannot load the question-answering reader {folder}: {exc}") from None
        self.name = str(folder)
        self.max_length = min(max_length, getattr(self._tok, "model_max_length", max_length) or max_length)

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        enc = self._tok([question] * len(passages), list(passages), truncation="only_second",
                        max_length=self.max_length, stride=self.max_length // 4, return_overflowing_tokens=True,
                        padding=True, return_tensors="pt")
        owner = enc.pop("overflow_to_sample_mapping").tolist()
        context = [[s == 1 for s in enc.sequence_ids(i)] for i in range(len(owner))]
        with self._torch.no_grad():
            feed = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            out = self._model(**feed)
        best = [float("-inf")] * len(passages)
        for i, k in enumerate(owner):
            start, end = out.start_logits[i].tolist(), out.end_logits[i].tolist()
            best[k] = max(best[k], _span_margin(start, end, context[i]))
        return best


def _span_margin(start: list[float], end: list[float], context: list[bool]) -> float:
    """The best passage span's start + end logit minus the null answer's ([CLS], index 0)."""
    null = start[0] + end[0]
    positions = [i for i, c in enumerate(context) if c]
    best = float("-inf")
    top_starts = sorted(positions, key=lambda i: -start[i])[:20]
    top_ends = sorted(positions, key=lambda i: -end[i])[:20]
    for s in top_starts:
        for e in top_ends:
            if s <= e < s + LONGEST_ANSWER:
                best = max(best, start[s] + end[e])
    return best - null
