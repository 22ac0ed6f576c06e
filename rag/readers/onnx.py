"""A reader exported to ONNX, run with onnxruntime and the `tokenizers` library only.

The folder holds the graph (model.onnx, or model-int8.onnx), the tokenizer.json it was
trained with and reader.json: `max_length`, `question_tokens` and `threshold`. The graph
takes input_ids, attention_mask and token_type_ids and gives an `answerable` logit per
row, and (the packaged reader) `start_logits` and `end_logits` per token: its span head,
which `read_spans` decodes into the best answer spans of each passage, as character
offsets into the passage (rag/answer_locate.py uses them). A pair is encoded as the training did (scripts/train_reader.py):
[CLS] question [SEP] passage [SEP], the question cut at `question_tokens`, a passage too
long for the rest cut into windows that overlap by half; the pair scores its best window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MissingDependencyError, ModelNotFoundError
from ..types import Reading

# Windows per forward pass: all of `ask`'s five passages fit in one.
BATCH = 32


class PairEncoder:
    """(question, passage) -> the token windows the reader reads, as (ids, type ids)."""

    def __init__(self, tokenizer_file: Path, max_length: int, question_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(tokenizer_file))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.cls, self.sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        if self.cls is None or self.sep is None:
            raise ModelNotFoundError(
                f"{tokenizer_file} has no [CLS] and [SEP] tokens; the reader needs a BERT tokenizer")
        self.pad = self.tok.token_to_id("[PAD]") or 0
        self.max_length, self.question_tokens = max_length, question_tokens

    def question(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids[: self.question_tokens]

    def starts(self, q: list[int], n: int) -> list[int]:
        """Where each window of an n-token passage starts: windows overlap by half."""
        room = max(1, self.max_length - len(q) - 3)
        return [0] if n <= room else [*range(0, n - room, max(1, room // 2)), n - room]

    def windows(self, q: list[int], passage: list[int]) -> list[tuple[list[int], list[int]]]:
        room = max(1, self.max_length - len(q) - 3)
        starts = self.starts(q, len(passage))
        head = [self.cls, *q, self.sep]
        return [([*head, *passage[s : s + room], self.sep], [0] * len(head) + [1] * (len(passage[s : s + room]) + 1))
                for s in starts]

    def pairs(self, question: str, passages: Sequence[str]) -> list[list[tuple[list[int], list[int]]]]:
        """Each passage's windows, in order."""
        q = self.question(question)
        encoded = self.tok.encode_batch(list(passages), add_special_tokens=False) if passages else []
        return [self.windows(q, e.ids) for e in encoded]

    def located_pairs(self, question: str, passages: Sequence[str]) -> list[tuple[list, list[tuple[int, int]]]]:
        """Each passage's windows with, per window, the offset of its first passage token,
        and the passage's token character offsets: what maps a span back to the text."""
        q = self.question(question)
        encoded = self.tok.encode_batch(list(passages), add_special_tokens=False) if passages else []
        out = []
        for e in encoded:
            windows = zip(self.starts(q, len(e.ids)), self.windows(q, e.ids))
            out.append((list(windows), list(e.offsets)))
        return out

    def arrays(self, windows: Sequence[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
        width = max(len(ids) for ids, _ in windows)
        ids = np.full((len(windows), width), self.pad, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, (x, t) in enumerate(windows):
            ids[row, : len(x)], types[row, : len(t)], mask[row, : len(x)] = x, t, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def onnx_file(path: Path) -> Path:
    """The graph to run: `path` itself if it is a file, else model.onnx, model-int8.onnx
    or the folder's only .onnx file."""
    if path.is_file():
        return path
    for name in ("model.onnx", "model-int8.onnx"):
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.onnx"))
    if len(found) != 1:
        raise ModelNotFoundError(f"{path} holds {len(found)} .onnx files and no model.onnx; pass --reader FILE.onnx")
    return found[0]


class OnnxReader:
    """The answerable logit of an ONNX reader; threshold and lengths from its reader.json."""

    def __init__(self, path: Path, threads: int | None = None, name: str = "") -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError(f"onnxruntime is needed for the ONNX reader ({exc})") from None
        graph = onnx_file(path)
        folder = graph.parent
        meta_file, tokenizer_file = folder / "reader.json", folder / "tokenizer.json"
        for needed in (meta_file, tokenizer_file):
            if not needed.is_file():
                raise ModelNotFoundError(f"the reader {folder} has no {needed.name}")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            max_length, question_tokens = int(meta["max_length"]), int(meta.get("question_tokens", 64))
            self.threshold = float(meta.get("threshold", 0.0))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelNotFoundError(f"cannot read {meta_file} (needs max_length, threshold): {exc!r}") from None
        self.name = name or str(folder)
        self.path = graph
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise ModelNotFoundError(f"cannot load the reader {graph}: {exc}") from None
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "answerable" if "answerable" in outputs else outputs[0]
        # The span head, when the graph has one (the packaged reader does).
        self.has_spans = {"start_logits", "end_logits"} <= set(outputs)
        self.max_answer_tokens = int(meta.get("max_answer_tokens", 30))
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.encoder = PairEncoder(tokenizer_file, max_length, question_tokens)

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        return self.score_pairs([(question, p) for p in passages])

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The score of each (question, passage), windows of different questions batched
        together (what a benchmark scoring thousands of pairs needs)."""
        asked: dict[str, list[int]] = {}
        for k, (question, _) in enumerate(pairs):
            asked.setdefault(question, []).append(k)
        items = []
        for question, ks in asked.items():
            for k, windows in zip(ks, self.encoder.pairs(question, [pairs[k][1] for k in ks])):
                items += [(k, w) for w in windows]
        items.sort(key=lambda t: len(t[1][0]))  # similar lengths together: less padding
        best = [-np.inf] * len(pairs)
        for i in range(0, len(items), BATCH):
            chunk = items[i : i + BATCH]
            feed = {k: v for k, v in self.encoder.arrays([w for _, w in chunk]).items() if k in self._inputs}
            logits = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float64).reshape(len(chunk), -1)
            for (k, _), row in zip(chunk, logits):
                best[k] = max(best[k], float(row[-1]))
        return best

    def read_spans(self, question: str, passages: Sequence[str], per_passage: int = 8) -> list[Reading]:
        """Each passage read with the span head: its answerable logit (best window) and
        its best answer spans (start + end logit, at most `max_answer_tokens` tokens),
        as character offsets into the passage, best first.

        Raises:
            ModelNotFoundError: the graph has no span head (start_logits, end_logits).
        """
        if not self.has_spans:
            raise ModelNotFoundError(f"the reader {self.path} has no span head (start_logits, end_logits)")
        located = self.encoder.located_pairs(question, passages)
        items = [(k, s, w) for k, (windows, _) in enumerate(located) for s, w in windows]
        best = [-np.inf] * len(passages)
        spans: list[dict[tuple[int, int], float]] = [{} for _ in passages]
        head = len(self.encoder.question(question)) + 2
        for i in range(0, len(items), BATCH):
            chunk = items[i : i + BATCH]
            feed = {k: v for k, v in self.encoder.arrays([w for _, _, w in chunk]).items() if k in self._inputs}
            logit, starts, ends = self._session.run([self._output, "start_logits", "end_logits"], feed)
            logit = np.asarray(logit, dtype=np.float64).reshape(len(chunk), -1)
            for row, (k, first, window) in enumerate(chunk):
                best[k] = max(best[k], float(logit[row, -1]))
                width = len(window[0]) - head - 1  # passage tokens in this window
                offsets = located[k][1]
                for a, b, score in top_spans(starts[row, head : head + width], ends[row, head : head + width],
                                             self.max_answer_tokens, per_passage):
                    key = (offsets[first + a][0], offsets[first + b][1])
                    spans[k][key] = max(score, spans[k].get(key, -np.inf))
        return [Reading(float(best[k]), tuple(sorted(((a, b, s) for (a, b), s in spans[k].items()),
                                                          key=lambda t: -t[2])[:per_passage]))
                for k in range(len(passages))]


def top_spans(start: np.ndarray, end: np.ndarray, max_tokens: int, n: int) -> list[tuple[int, int, float]]:
    """The n best (i, j, start[i] + end[j]) with i <= j < i + max_tokens: token indices."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if not len(start):
        return []
    total = start[:, None] + end[None, :]
    i, j = np.indices(total.shape)
    total[(j < i) | (j >= i + max_tokens)] = -np.inf
    flat = np.argsort(total, axis=None)[::-1][:n]
    return [(int(a), int(b), float(total[a, b])) for a, b in zip(*np.unravel_index(flat, total.shape))
            if np.isfinite(total[a, b])]
