"""The answer policy: pure functions from the evidence to an `Answer`.

Given the question, the retrieved hits, the extract (the source sentences that best
answer it, with coverage and missing names) and, when the LLM ran, its text, decide
between abstaining, quoting the sources (extractive), the LLM's answer (llm), that
answer plus the passages it leaves out (llm+quote), and the quotes instead of an answer
the sources do not support (fallback). Nothing here retrieves, generates or times:
rag/index.py does that and fills in the timings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .citations import citations_for, is_refusal
from .config import Settings
from .prompt import NOT_FOUND
from .text import support
from .types import Answer, Hit, Sentence
from .verify import SUPPORT_THRESHOLD, Extract, render, verify


def should_abstain(hits: Sequence[Hit], quotes: Extract, settings: Settings) -> bool:
    """Nothing close enough to answer from, no passage covers what the question asks, or
    a name or number of the question is in no source (asked about Mistral, the sources
    speak of Llama): then say so without asking the LLM."""
    best = max((h.similarity or 0.0 for h in hits), default=0.0)
    return (best < settings.min_score or quotes.coverage < settings.min_coverage
            or bool(settings.check_terms and quotes.missing) or not quotes.sentences)


def abstained(question: str, hits: Sequence[Hit], quotes: Extract, models: dict[str, str]) -> Answer:
    """The refusal, with the closest chunks to look at."""
    return Answer(question, NOT_FOUND, False, (), (), tuple(hits), models, {}, strategy="abstain",
                  coverage=quotes.coverage, missing=quotes.missing)


def quoted(question: str, hits: Sequence[Hit], quotes: Extract, models: dict[str, str]) -> Answer:
    """The extractive answer: the best-matching source sentences, cited."""
    text = render(quotes.sentences)
    return Answer(
        question=question, text=text, answerable=True, citations=citations_for(text, quotes.sentences, hits),
        sources=tuple(hits), hits=tuple(hits), models=models, timings_ms={}, sentences=quotes.sentences,
        strategy="extractive", coverage=quotes.coverage, missing=quotes.missing,
    )


def generated(
    question: str, text: str, sources: Sequence[Hit], hits: Sequence[Hit], quotes: Extract,
    models: dict[str, str], settings: Settings,
) -> Answer:
    """The answer to give once the LLM wrote `text` from the prompt's `sources`.

    Every sentence is verified against the sources it cites. An answer no source supports
    becomes the extractive one ("fallback", the LLM's text kept as the draft) when the
    settings allow; the "grounded" strategy adds the passages the answer leaves out.
    """
    sentences = verify(text, sources)
    refused = is_refusal(text)
    if settings.fallback and not refused and not any(s.supported for s in sentences):
        return replace(quoted(question, hits, quotes, models), strategy="fallback", draft=text)
    strategy = "abstain" if refused else "llm"
    if settings.strategy == "grounded" and not refused:
        grounded = add_source_passages(text, sentences, quotes, hits, sources)
        if grounded is not None:
            (text, sentences), strategy = grounded, "llm+quote"
    return Answer(
        question=question, text=text, answerable=not refused, citations=citations_for(text, sentences, sources),
        sources=tuple(sources), hits=tuple(hits), models=models, timings_ms={}, sentences=sentences,
        strategy=strategy, coverage=quotes.coverage, missing=quotes.missing,
    )


def add_source_passages(
    text: str, checked: Sequence[Sentence], quotes: Extract, hits: Sequence[Hit], sources: Sequence[Hit]
) -> tuple[str, tuple[Sentence, ...]] | None:
    """The "grounded" strategy: the answer with the best source passages (the extractive
    answer's) added after it, renumbered to their place in the prompt, and its sentences
    with the passages'; None when the answer already says what every passage says or no
    passage was in the prompt."""
    added = []
    for best in quotes.sentences:
        hit = hits[best.citations[0] - 1]
        numbers = [n for n, h in enumerate(sources, start=1) if h.chunk_id == hit.chunk_id]
        if not numbers or support(best.text, text) >= SUPPORT_THRESHOLD:
            continue
        n = numbers[0]
        added.append(replace(best, citations=(n,), quotes=tuple(replace(q, id=n) for q in best.quotes)))
    if not added:
        return None
    return f"{text}\n\nFrom the sources: {render(added)}", (*checked, *added)
