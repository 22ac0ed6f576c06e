"""Records of reading and deciding (re-exported by rag/types.py, where the other records
live): a passage as a reader's span head read it, the located answer and the answer
gate's verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reading:
    """A passage as a reader's span head read it: its answerable logit and its best
    answer spans (start, end, score), character offsets into the passage text, best first."""

    answerable: float
    spans: tuple[tuple[int, int, float], ...]


@dataclass(frozen=True)
class AnswerSpan:
    """The located answer (rag/answer_locate.py): the short span that answers, the
    sentence that holds it, both as character offsets into the stored page text (as a
    Quote's), and how it was found: "reader" (the span head), "expansion" or
    "definition" (rag/definitions.py), or "sentence" (the sentence itself)."""

    text: str
    source: str
    page: int | None
    start: int
    end: int
    score: float
    sentence: str
    sentence_start: int
    sentence_end: int
    chunk_id: int
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "page": self.page, "start": self.start, "end": self.end,
                "score": round(self.score, 4), "how": self.how, "chunk_id": self.chunk_id,
                "sentence": {"text": self.sentence, "start": self.sentence_start, "end": self.sentence_end}}


@dataclass(frozen=True)
class GateScore:
    """The answer gate's verdict on one question (rag/answer_gate.py): the probability
    that the passages answer it, and the threshold under which `ask` declines."""

    probability: float
    threshold: float

    def to_dict(self) -> dict[str, float]:
        return {"probability": round(self.probability, 4), "threshold": round(self.threshold, 4)}
