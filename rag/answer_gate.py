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
from .errors import ModelNotFoundError
from .text import content_words
from .types import AnswerSpan, GateScore, Hit, Reading, ReaderVerdict
from .verify import Extract

PACKAGED = Path(__file__).resolve().parent / "models" / "gate.json"
FEATURES = ("similarity", "coverage", "rare_terms", "reader", "span", "located", "defined", "kind_stated",
            "names_missing")


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


def features(ev: Evidence) -> dict[str, float]:
    """The gate's inputs, each a plain number (see FEATURES)."""
    best_sim = max((h.similarity or 0.0 for h in ev.pool), default=0.0)
    reader = max((r.answerable for r in ev.readings), default=-10.0) if ev.readings else 0.0
    span = max((s for r in ev.readings for _, _, s in r.spans[:1]), default=0.0) if ev.readings else 0.0
    located = ev.located
    holder = next((h for h in ev.pool if located and h.chunk_id == located.chunk_id), None)
    return {
        "similarity": best_sim,
        "coverage": ev.quotes.coverage,
        "rare_terms": rare_terms(ev.question, ev.idf, holder.text if holder else ""),
        "reader": reader,
        "span": span / 10.0,
        "located": located.score if located else 0.0,
        "defined": 1.0 if located and located.how in ("expansion", "definition") else 0.0,
        "kind_stated": 1.0 if ev.quotes.stated else 0.0,
        "names_missing": 1.0 if ev.quotes.missing else 0.0,
    }


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
