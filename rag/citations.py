"""Finds the citations in an answer and matches them to the numbered sources.

Explicit citations are the [n] markers the model wrote; a number that names no source
is kept as an invalid citation, so it is shown, not hidden. A sentence that cites
nothing but restates a source (most of its content words appear in that source) is
attributed to it; small models often answer from a source without citing it.
"""

from __future__ import annotations

import re
from typing import Sequence

from .prompt import NOT_FOUND
from .types import Citation, Hit

_CITE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_REFUSAL = re.compile(
    r"(do(es)? not contain|cannot find|can't find|could not find|no information|not (mentioned|provided|found) in)",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_STOP = frozenset(
    "a an and are as at be been but by can do does for from has have how if in into is it its of on or "
    "that the their then there these they this to was were what when which while who why will with "
    "you your our we not no than also such so may more most other some".split()
)

# Share of a sentence's content words that must occur in a source to attribute it.
# 0.6 accepts paraphrase with a few words of its own and rejects generic filler
# ("This is important for many reasons") that shares only common words.
ATTRIBUTION_THRESHOLD = 0.6
MIN_CONTENT_WORDS = 4


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance, each once."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def content_words(text: str) -> set[str]:
    words = (w.rstrip("s") if len(w) > 3 else w for w in _WORD.findall(text.lower()))
    return {w for w in words if w not in _STOP and len(w) > 1}


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words that occur in the source."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(source_text)) / len(words)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


def restated_source(sentence: str, sources: Sequence[Hit]) -> int | None:
    """The 1-based number of the source a sentence restates (support at least
    ATTRIBUTION_THRESHOLD, the best if several), or None."""
    scores = [support(sentence, h.text) for h in sources]
    if not scores:
        return None
    best = max(range(len(scores)), key=scores.__getitem__)
    return best + 1 if scores[best] >= ATTRIBUTION_THRESHOLD else None


def extract_citations(text: str, sources: Sequence[Hit]) -> tuple[Citation, ...]:
    """Explicit citations first, then sources that uncited sentences restate."""
    out = [Citation(n, sources[n - 1] if 1 <= n <= len(sources) else None) for n in cited_numbers(text)]
    taken = {c.id for c in out}
    for sentence in sentences(text):
        if _CITE.search(sentence) or len(content_words(sentence)) < MIN_CONTENT_WORDS:
            continue
        n = restated_source(sentence, sources)
        if n is not None and n not in taken:
            out.append(Citation(n, sources[n - 1], attributed=True))
            taken.add(n)
    return tuple(out)


def is_refusal(text: str) -> bool:
    """Whether the answer says the sources lack the answer (rather than answering)."""
    stripped = text.strip()
    return not stripped or stripped.startswith(NOT_FOUND[:-1]) or bool(_REFUSAL.search(stripped[:200]))
