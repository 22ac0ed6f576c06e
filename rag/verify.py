"""Checks each answer sentence against the sources it cites, finds the exact supporting
span, builds extractive answers and judges whether the sources answer the question.

Support is lexical: the share of a sentence's content words (rag/text.py: stop words
dropped, a plural "s" folded) that occur in a span of the cited source, a window of one
to three of its sentences. A sentence is supported when that share reaches
SUPPORT_THRESHOLD for a source it cites, or, citing none, for the source it restates
(which it is then credited with), and the span bears out its names and numbers, each
number stated of the same thing (rag/facts.py). The best window is the quote: character offsets into
the stored page text.

Source sentences that address the model ("ignore the previous instructions...") are
never quoted and never count as support: retrieved text is data, not instructions.

An extractive answer needs no model: the source sentences that cover the most of the
question's content words, each word weighted by its rarity in the index (IDF), so
"Mistral" counts for more than "model". The same coverage decides answerability: when
the best sentence covers too little of the question, the documents do not answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Mapping, Sequence

from .citations import cited_numbers, strip_citations
from .answer_kind import stated
from .facts import mentions, names, unbound
from .text import content_words, sentence_spans, sentences
from .types import AnswerSpan, Hit, Quote, Sentence

# Share of a sentence's content words that must occur in a source for the source to
# support it (or, when the sentence cites nothing, to be credited with it). 0.6 accepts
# paraphrase with a few words of its own and rejects generic filler ("This is important
# for many reasons") that shares only common words.
SUPPORT_THRESHOLD = 0.6
RUNNER_UP = 0.6  # see extract()
FOLLOW_WORDS = 70  # the best sentence brings the next one along while both stay this short
WINDOW = 3  # the longest run of source sentences one quote may span


# Phrasing aimed at a model rather than a reader: the marks of a prompt injection.
# Such sentences in a source are never quoted as an answer or counted as support.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,60}\b(instructions?|prompts?|rules|guidelines|above|previous)\b"
    r"|\bsystem prompt\b|\b(you|assistant|model|ai)\s+(must|should|will)\s+(now\s+)?(answer|reply|respond|say|output|print)\b"
    r"|\b(reply|respond|answer)\s+(only\s+)?with\b",
    re.I,
)


def is_instruction(sentence: str) -> bool:
    """Whether a source sentence talks to the model (an injection), not about the topic."""
    return bool(_INSTRUCTION.search(sentence))


@dataclass(frozen=True)
class _Span:
    start: int  # offsets into hit.text
    end: int
    words: frozenset[str]


def _units(hit: Hit) -> list[_Span]:
    """The hit's sentences, instruction sentences left out."""
    return [_Span(a, b, frozenset(content_words(hit.text[a:b])))
            for a, b in sentence_spans(hit.text) if not is_instruction(hit.text[a:b])]


def _spans(hit: Hit, units: Sequence[_Span] | None = None) -> list[_Span]:
    """Windows of 1..WINDOW consecutive sentences of the hit (from `_units(hit)`); a
    window never reaches across a left-out instruction sentence."""
    units = _units(hit) if units is None else units
    out = []
    for i, first in enumerate(units):
        words = first.words
        for j in range(i, min(i + WINDOW, len(units))):
            if j > i:
                if not _adjacent(hit, units[j - 1], units[j]):
                    break
                words = words | units[j].words
            out.append(_Span(first.start, units[j].end, words))
    return out


def _adjacent(hit: Hit, first: _Span, second: _Span) -> bool:
    """No left-out (instruction) sentence lies between the two spans."""
    return not hit.text[first.end:second.start].strip()


def _quote(n: int, hit: Hit, span: _Span, score: float) -> Quote:
    return Quote(n, hit.source, hit.page, hit.start + span.start, hit.start + span.end,
                 hit.text[span.start:span.end], score)


def _best_quote(claim: str, n: int, hit: Hit, spans: Sequence[_Span]) -> tuple[Quote, bool] | None:
    """The shortest of the hit's windows (`_spans(hit)`) that best supports the claim, and
    whether it bears out the claim's names and numbers (rag/facts.py); a window that
    reaches SUPPORT_THRESHOLD and bears them out beats any that does not."""
    words = content_words(claim)
    if not words:
        return None
    best: tuple[tuple[bool, float, int], _Span, bool] | None = None
    for span in spans:
        score = len(words & span.words) / len(words)
        holds = score >= SUPPORT_THRESHOLD and not unbound(claim, hit.text[span.start:span.end])
        key = (holds, score, -(span.end - span.start))
        if best is None or key > best[0]:
            best = (key, span, holds)
    return (_quote(n, hit, best[1], best[0][1]), best[2]) if best else None


def verify(text: str, sources: Sequence[Hit]) -> tuple[Sentence, ...]:
    """Split an answer into sentences and mark each supported or not, with its quotes.

    A sentence whose words a source shares but whose names or numbers it does not bear
    out is unsupported with the reason "mismatch"."""
    out = []
    windows = [_spans(h) for h in sources]  # split each source once, not once per sentence
    for raw in sentences(text):
        cited = tuple(n for n in cited_numbers(raw) if 1 <= n <= len(sources))
        bare = strip_citations(raw)
        if not content_words(bare):
            continue  # "[1]." alone, or filler with no content
        candidates = cited or tuple(range(1, len(sources) + 1))
        judged = [r for n in candidates if (r := _best_quote(bare, n, sources[n - 1], windows[n - 1])) is not None]
        quotes = [q for q, _ in judged]
        good = [q for q, holds in judged if holds]
        mismatch = "" if good or not any(q.support >= SUPPORT_THRESHOLD for q in quotes) else "mismatch"
        if cited:
            out.append(Sentence(bare, cited, bool(good), tuple(good or quotes), reason=mismatch))
        elif good:
            top = max(good, key=lambda q: q.support)  # the source it restates
            out.append(Sentence(bare, (top.id,), True, (top,)))
        else:
            out.append(Sentence(bare, (), False, (), reason=mismatch))
    return tuple(out)


def weighted_coverage(wanted: Mapping[str, float], words: frozenset[str] | set[str]) -> float:
    total = sum(wanted.values())
    return sum(w for t, w in wanted.items() if t in words) / total if total else 0.0


def question_weights(question: str, idf: Mapping[str, float] | None = None) -> dict[str, float]:
    """The question's content words, each weighted by its IDF (1 when none is given)."""
    return {w: (idf or {}).get(w, 1.0) for w in content_words(question)}


@dataclass(frozen=True)
class Extract:
    sentences: tuple[Sentence, ...]
    coverage: float  # weighted share of the question covered by the best passage of the sources
    missing: tuple[str, ...] = ()  # names and numbers of the question that no source mentions
    stated: bool = True  # some source states an answer of the kind asked for (rag/answer_kind.py)


# A sentence opening with one of these leans on the one before it ("It computes exact
# attention..." after "FlashAttention, ..."): the quote then starts a sentence earlier.
ANAPHOR = re.compile(r"^(it|its|this|these|they|their|that|those|such|he|she|his|her|the (method|technique|model|paper|approach))\b", re.I)
def _words(text: str) -> int:
    return len(text.split())


def specific_terms(question: str) -> list[str]:
    """The question's names and numbers (GPT-2, Mistral, 1998), lowercased, possessives dropped."""
    return [w.lower() for w in names(question)]


def missing_terms(question: str, sources: Sequence[Hit]) -> tuple[str, ...]:
    """Names and numbers of the question that none of the sources mentions."""
    # A file's name counts as a mention: the BSD licence's text never says "BSD".
    text = " ".join(f"{PurePosixPath(h.source).stem} {h.heading} {h.text}" for h in sources).lower()
    return tuple(w.lower() for w in names(question) if not mentions(text, w))


def extract(
    question: str, sources: Sequence[Hit], max_sentences: int = 2, idf: Mapping[str, float] | None = None,
    located: AnswerSpan | None = None,
) -> Extract:
    """The source sentences that best cover the question, best first, each cited and quoted.

    A sentence scores the weighted share of the question's content words it contains
    (ties go to the better-ranked source). More sentences follow the best one when they
    score at least RUNNER_UP of it and come from the same file, or score at least
    0.9 of it from another: a weak runner-up from another file would be a wrong citation.
    With `located` (rag/answer_locate.py) the located sentence comes first and the best
    by coverage may follow it from the same file, if it does not overlap it.
    """
    found = _by_coverage(question, sources, max_sentences, idf)
    if located is None:
        return found
    first = located_sentence(located, sources)
    if first is None:
        return found
    hit = sources[first.citations[0] - 1]
    rest = [s for s in found.sentences[:1] if sources[s.citations[0] - 1].source == hit.source
            and not any(q.source == hit.source and q.page == hit.page and q.start < located.sentence_end
                        and located.sentence_start < q.end for q in s.quotes)]
    return replace(found, sentences=(first, *rest)[:max_sentences])


def located_sentence(located: AnswerSpan, sources: Sequence[Hit]) -> Sentence | None:
    """The located answer's sentence, cited with its number among `sources` and quoted;
    None when no source holds it."""
    n = next((i for i, h in enumerate(sources, start=1) if h.chunk_id == located.chunk_id), 0)
    if not n:
        return None
    hit = sources[n - 1]
    a, b = located.sentence_start, located.sentence_end
    quote = Quote(n, hit.source, hit.page, a, b, hit.text[a - hit.start:b - hit.start])
    return Sentence(located.sentence, (n,), True, (quote,))


def _by_coverage(
    question: str, sources: Sequence[Hit], max_sentences: int, idf: Mapping[str, float] | None
) -> Extract:
    wanted = question_weights(question, idf)
    missing = missing_terms(question, sources)
    said = stated(question, sources)
    if not wanted:
        return Extract((), 0.0, missing, said)
    scored = []
    coverage = 0.0
    for n, hit in enumerate(sources, start=1):
        base = _units(hit)
        for i, span in enumerate(base):
            if len(span.words) < 3:
                continue
            score = weighted_coverage(wanted, span.words)
            if i and ANAPHOR.match(hit.text[span.start:span.end]) and _adjacent(hit, base[i - 1], span):
                span = _Span(base[i - 1].start, span.end, span.words | base[i - 1].words)
            if (i + 1 < len(base) and _adjacent(hit, span, base[i + 1])
                    and _words(hit.text[span.start:base[i + 1].end]) <= FOLLOW_WORDS):
                # The fact asked for often comes right after the sentence that sets it up.
                span = _Span(span.start, base[i + 1].end, span.words | base[i + 1].words)
            scored.append((score + 0.001 / n, n, hit, span))
        for span in _spans(hit, base):  # neighbours may hold the words the best sentence lacks
            coverage = max(coverage, weighted_coverage(wanted, span.words))
    scored.sort(key=lambda t: -t[0])
    picked: list[Sentence] = []
    for score, n, hit, span in scored:
        if len(picked) == max_sentences or score < 0.2:
            break
        if picked and (score < RUNNER_UP * scored[0][0] or (
                hit.source != sources[picked[0].citations[0] - 1].source and score < 0.9 * scored[0][0])):
            continue
        text = " ".join(hit.text[span.start:span.end].split())
        if all(text not in p.text and p.text not in text for p in picked):
            picked.append(Sentence(text, (n,), True, (_quote(n, hit, span, 1.0),)))
    return Extract(tuple(picked), coverage, missing, said)


def render(sentences_: Sequence[Sentence]) -> str:
    return " ".join(f"{s.text} [{', '.join(map(str, s.citations))}]" if s.citations else s.text for s in sentences_)
