"""The answer located: which sentence of which passage holds the answer, and the short
span inside it, from every signal `ask` has.

Each candidate sentence (every sentence of the passages read, instruction sentences left
out) is scored by a weighted sum of:

- `lexical`: the IDF-weighted share of the question's content words it holds (what the
  extractive answer used alone before);
- `span`: the probability mass the reader's span head puts on spans inside it (a
  softmax over the best spans of all passages read, so passages compete);
- `definition`: 1 when the question asks what a term is or stands for and the sentence
  defines it (rag/definitions.py);
- `similarity`: the passage's cosine to the question.

The weights (`WEIGHTS`) were chosen by a grid search on the fit halves of the calibration
sets of scripts/fit_gate.py (SQuAD articles in a real index, the corpus question set, the
real-document "tune" half), each set counting the same; docs/reading.md gives the
figures on the other halves. The span shown is the definition's, else the reader's best span
inside the sentence, else the sentence itself. Without a reader with a span head the
span signal is 0 and the others decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from . import definitions
from .answer_kind import expected
from .text import content_words
from .types import AnswerSpan, Hit, Reading
from .verify import ANAPHOR, FOLLOW_WORDS, _adjacent, _units, question_weights, weighted_coverage

WEIGHTS = {"lexical": 3.0, "span": 2.0, "definition": 1.0, "similarity": 1.0}
SPAN_TEMPERATURE = 1.0  # of the softmax over span scores (start + end logits)


@dataclass(frozen=True)
class Candidate:
    hit: int  # index into the passages
    start: int  # the sentence, offsets into the passage text
    end: int
    lexical: float
    span: float
    definition: float
    similarity: float
    best_span: tuple[int, int, float] | None  # the reader's best span inside the sentence

    def score(self, weights: Mapping[str, float] = WEIGHTS) -> float:
        return (weights["lexical"] * self.lexical + weights["span"] * self.span
                + weights["definition"] * self.definition + weights["similarity"] * self.similarity)


def candidates(
    question: str, passages: Sequence[Hit], readings: Sequence[Reading] | None = None,
    idf: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """Every sentence of the passages with its signals (see the module docstring)."""
    wanted = question_weights(question, idf)
    term = definitions.asked(question)
    mass = _span_mass(readings) if readings else []
    out = []
    for n, hit in enumerate(passages):
        defined = definitions.find(term, hit.text) if term else None
        units = _units(hit)
        for i, unit in enumerate(units):
            start, end = unit.start, unit.end
            words = unit.words
            spans = [s for s in mass[n] if start <= s[0] and s[1] <= end] if mass else []
            inside = max(spans, key=lambda s: s[3]) if spans else None
            is_def = bool(defined and start < defined.sentence_end and defined.sentence_start < end)
            if not words and not is_def and not spans:
                continue
            out.append(Candidate(
                n, start, end, weighted_coverage(wanted, words) if wanted else 0.0,
                sum(s[3] for s in spans), 1.0 if is_def else 0.0, hit.similarity or 0.0,
                (inside[0], inside[1], inside[2]) if inside else None))
    return out


def _span_mass(readings: Sequence[Reading]) -> list[list[tuple[int, int, float, float]]]:
    """Each passage's spans with their share of a softmax over all passages' spans."""
    scores = [s for r in readings for _, _, s in r.spans]
    if not scores:
        return [[] for _ in readings]
    top = max(scores)
    total = sum(math.exp((s - top) / SPAN_TEMPERATURE) for s in scores)
    return [[(a, b, s, math.exp((s - top) / SPAN_TEMPERATURE) / total) for a, b, s in r.spans] for r in readings]


def locate(
    question: str, passages: Sequence[Hit], readings: Sequence[Reading] | None = None,
    idf: Mapping[str, float] | None = None, weights: Mapping[str, float] = WEIGHTS,
) -> AnswerSpan | None:
    """The located answer: the best candidate sentence's span (see the module
    docstring); None when no passage has a sentence."""
    found = candidates(question, passages, readings, idf)
    if not found:
        return None
    best = max(found, key=lambda c: (c.score(weights), -c.hit))
    return to_span(question, passages, best, weights)


def to_span(question: str, passages: Sequence[Hit], best: Candidate, weights: Mapping[str, float] = WEIGHTS) -> AnswerSpan:
    hit = passages[best.hit]
    start, end, how = best.start, best.end, "sentence"
    term = definitions.asked(question)
    defined = definitions.find(term, hit.text) if term and best.definition else None
    if defined:
        start, end, how = defined.start, defined.end, defined.how
    elif best.best_span is not None:
        start, end, how = best.best_span[0], best.best_span[1], "reader"
    a, b = widened(hit, best.start, best.end)
    if defined:
        a, b = min(a, defined.sentence_start), max(b, defined.sentence_end)
    text = hit.text[start:end].strip(" ,;:")
    if not any(ch.isalnum() for ch in text):  # punctuation alone answers nothing: the sentence does
        start, end, how = a, b, "sentence"
        text = hit.text[a:b]
    start += hit.text[start:end].find(text)
    return AnswerSpan(
        text=text, source=hit.source, page=hit.page, start=hit.start + start, end=hit.start + start + len(text),
        score=round(best.score(weights), 4), sentence=" ".join(hit.text[a:b].split()),
        sentence_start=hit.start + a, sentence_end=hit.start + b, chunk_id=hit.chunk_id, how=how)


def widened(hit: Hit, start: int, end: int) -> tuple[int, int]:
    """The located sentence with the one before it when it leans on it ("It computes..."),
    and the one after it while both stay short: the rule the extractive answer quotes by
    (rag/verify.py), so "the sentence (or two)" that hold the answer."""
    units = _units(hit)
    i = next((k for k, u in enumerate(units) if u.start == start), None)
    if i is None:
        return start, end
    if i and ANAPHOR.match(hit.text[start:end]) and _adjacent(hit, units[i - 1], units[i]):
        start = units[i - 1].start
    if i + 1 < len(units) and _adjacent(hit, units[i], units[i + 1]) and len(
            hit.text[start:units[i + 1].end].split()) <= FOLLOW_WORDS:
        end = units[i + 1].end
    return start, end


def holds(span: AnswerSpan, text: str) -> bool:
    """Whether a sentence carries the located span: its content words (or, for a span of
    none, its text) all occur in the sentence."""
    wanted = content_words(span.text)
    if not wanted:
        return span.text.lower() in text.lower()
    return wanted <= content_words(text)



def is_fact_question(question: str) -> bool:
    """A question whose answer is a fact the located span holds: what a term is or stands
    for, or a number, year or name (rag/answer_kind.py)."""
    return definitions.asked(question) is not None or expected(question) is not None


def focused(question: str, hits: Sequence[Hit], located: AnswerSpan | None) -> list[Hit]:
    """The prompt's sources for a fact question: the located sentence alone as the first
    source (a small model given five chunks copies one or loops; given the sentence it
    answers from it), then the other hits; other questions keep the hits as they are."""
    if located is None or not is_fact_question(question):
        return list(hits)
    holder = next((h for h in hits if h.chunk_id == located.chunk_id), None)
    if holder is None:
        return list(hits)
    a, b = located.sentence_start - holder.start, located.sentence_end - holder.start
    sentence = replace(holder, text=holder.text[a:b], start=located.sentence_start, end=located.sentence_end)
    return [sentence, *(h for h in hits if h.chunk_id != located.chunk_id)]
