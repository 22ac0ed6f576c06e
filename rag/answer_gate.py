"""Whether the passages answer the question: one calibrated score from every signal.

No single signal separates answerable from unanswerable questions everywhere: on real
documents the best cosine does it better than the reader, on SQuAD the reader wins, and
a term defined verbatim beats both. So the gate is a logistic regression over the
`FEATURES` of the evidence `ask` gathers (`Evidence`), fitted by scripts/fit_gate.py on
the calibration questions (held-out SQuAD 2.0 articles in a real index, the corpus
question set, the "tune" half of the real-document questions) and shipped as
rag/models/gate.json with its threshold and the figures it was chosen by. `ask` declines
with "weak_evidence" when the score is under the threshold; the names-and-numbers and
answer-kind checks still come first (rag/answer.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from . import definitions
from .answer_locate import Candidate, candidates
from .errors import ModelNotFoundError
from .text import content_words
from .types import AnswerSpan, GateScore, Hit, Reading, ReaderVerdict
from .verify import Extract

PACKAGED = Path(__file__).resolve().parent / "models" / "gate.json"
FEATURES = ("similarity", "located_similarity", "coverage", "sentence_coverage", "rare_terms", "reader",
            "reader_located", "span", "span_mass", "located", "defined")


@dataclass(frozen=True)
class Evidence:
    """What `ask` gathered before deciding: the hits (the prompt's candidates, the one
    holding the located answer first), every passage read, the span head's readings of
    them, the reader's verdict (with a gate reader), the located answer, the extract
    and the question words' IDF."""

    question: str
    hits: tuple[Hit, ...]
    pool: tuple[Hit, ...]
    readings: tuple[Reading, ...] | None
    verdict: ReaderVerdict | None
    located: AnswerSpan | None
    quotes: Extract
    idf: Mapping[str, float]
    read_ms: float = 0.0  # reading and locating took this long


def features(ev: Evidence) -> dict[str, float]:
    """The gate's inputs, each a plain number (see FEATURES): the best cosine and the
    located passage's, the best coverage and the located sentence's, the rare question
    words the located passage holds, the reader's best answerable logit and the located
    passage's, the best span score and the share of the span head's belief inside the
    located sentence, the locator's score, and whether a definition was found."""
    located = ev.located
    at = next((i for i, h in enumerate(ev.pool) if located and h.chunk_id == located.chunk_id), None)
    holder = ev.pool[at] if at is not None else None
    readings = ev.readings or ()
    chosen = _located_candidate(ev, at)
    return {
        "similarity": max((h.similarity or 0.0 for h in ev.pool), default=0.0),
        "located_similarity": (holder.similarity or 0.0) if holder else 0.0,
        "coverage": ev.quotes.coverage,
        "sentence_coverage": chosen.lexical if chosen else 0.0,
        "rare_terms": rare_terms(ev.question, ev.idf, holder.text if holder else ""),
        "reader": max((r.answerable for r in readings), default=0.0),
        "reader_located": readings[at].answerable if readings and at is not None else 0.0,
        "span": max((s for r in readings for _, _, s in r.spans[:1]), default=0.0) / 10.0,
        "span_mass": chosen.span if chosen else 0.0,
        "located": located.score if located else 0.0,
        "defined": 1.0 if located and located.how in ("expansion", "definition") else 0.0,
    }


def _located_candidate(ev: Evidence, at: int | None) -> Candidate | None:
    if at is None or ev.located is None:
        return None
    start = ev.located.sentence_start - ev.pool[at].start
    found = [c for c in candidates(ev.question, ev.pool, ev.readings, ev.idf) if c.hit == at]
    return min(found, key=lambda c: abs(c.start - start), default=None)


def rare_terms(question: str, idf: Mapping[str, float], text: str) -> float:
    """The IDF-weighted share of the question's rarer half of words (and the term a
    definition question asks about) that the passage holds verbatim."""
    weights = {w: idf.get(w, 1.0) for w in content_words(question)}
    if not weights:
        return 0.0
    cut = sorted(weights.values())[len(weights) // 2]
    rare = {w: v for w, v in weights.items() if v >= cut}
    asked = definitions.asked(question)
    if asked:
        rare.update({w: max(weights.get(w, 1.0), cut) for w in content_words(asked.term)})
    held = content_words(text)
    total = sum(rare.values())
    return sum(v for w, v in rare.items() if w in held) / total if total else 0.0


@dataclass(frozen=True)
class Gate:
    weights: Mapping[str, float]
    bias: float
    threshold: float  # a probability: under it, `ask` declines
    name: str = "packaged"

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in values.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def load_gate(path: Path | None = None) -> Gate:
    """The gate fitted by scripts/fit_gate.py (the packaged one by default).

    Raises:
        ModelNotFoundError: the file is missing or not a gate.
    """
    path = path or PACKAGED
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Gate(dict(data["weights"]), float(data["bias"]), float(data["threshold"]),
                    "packaged" if path == PACKAGED else str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"cannot read the answer gate {path}: {exc!r}; reinstall rag or set gate = \"\"") from None


def vector(values: Mapping[str, float], names: Sequence[str] = FEATURES) -> list[float]:
    return [float(values[n]) for n in names]
