"""Checks each answer sentence against the sources it cites, and builds extractive answers.

Support is lexical: the share of a sentence's content words (stop words dropped, a
plural "s" folded) that occur in the cited source. A sentence is supported when that
share reaches SUPPORT_THRESHOLD for at least one source it cites, or, citing none, for
the source it restates (which it is then credited with). An extractive answer needs no
model: it returns the source sentences that share the most content words with the
question, each citing its source.
"""

from __future__ import annotations

from typing import Sequence

from .citations import (
    ATTRIBUTION_THRESHOLD, cited_numbers, content_words, restated_source, sentences, strip_citations, support,
)
from .types import Hit, Sentence

SUPPORT_THRESHOLD = ATTRIBUTION_THRESHOLD


def verify(text: str, sources: Sequence[Hit]) -> tuple[Sentence, ...]:
    """Split an answer into sentences and mark each supported or not."""
    out = []
    for raw in sentences(text):
        cited = tuple(n for n in cited_numbers(raw) if 1 <= n <= len(sources))
        bare = strip_citations(raw)
        if not content_words(bare):
            continue  # "[1]." alone, or filler with no content
        if cited:
            ok = any(support(bare, sources[n - 1].text) >= SUPPORT_THRESHOLD for n in cited)
        else:
            restated = restated_source(bare, sources)
            ok = restated is not None
            cited = (restated,) if restated is not None else ()
        out.append(Sentence(bare, cited, ok))
    return tuple(out)


def extract(question: str, sources: Sequence[Hit], max_sentences: int = 2) -> tuple[Sentence, ...]:
    """The source sentences that best match the question, in order of score, each cited.

    A sentence scores the share of the question's content words it contains, with a small
    bonus for the rank of its source so ties go to the better hit.
    """
    wanted = content_words(question)
    if not wanted:
        return ()
    scored = []
    for n, hit in enumerate(sources, start=1):
        for sent in sentences(hit.text):
            words = content_words(sent)
            if len(words) < 3:
                continue
            score = len(wanted & words) / len(wanted) + 0.01 / n
            scored.append((score, n, sent))
    scored.sort(key=lambda t: -t[0])
    picked: list[Sentence] = []
    for score, n, sent in scored:
        if score < 0.2 or len(picked) == max_sentences:
            break
        if all(sent != p.text for p in picked):
            picked.append(Sentence(" ".join(sent.split()), (n,), True))
    return tuple(picked)


def render(sentences_: Sequence[Sentence]) -> str:
    return " ".join(f"{s.text} [{', '.join(map(str, s.citations))}]" if s.citations else s.text for s in sentences_)
