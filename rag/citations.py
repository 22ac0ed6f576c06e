"""Finds the [n] citations in an answer and matches them to the numbered sources.

Explicit citations are the [n] markers the model wrote; a number that names no source
is kept as an invalid citation, so it is shown, not hidden. Sources that an uncited
sentence restates (rag/verify.py decides which) follow as attributed citations: small
models often answer from a source without citing it.
"""

from __future__ import annotations

import re
from typing import Sequence

from .prompt import NOT_FOUND
from .types import Citation, Hit, Quote, Sentence

_CITE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_REFUSAL = re.compile(
    r"(do(es)? not contain|cannot find|can't find|could not find|no information|not (mentioned|provided|found) in)",
    re.I,
)


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance, each once."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


def citations_for(text: str, checked: Sequence[Sentence], sources: Sequence[Hit]) -> tuple[Citation, ...]:
    """The answer's citations from its checked sentences: the [n] it wrote, in order
    (a number with no source kept as invalid), then sources that uncited sentences
    restate (attributed); each carries the quote that best supports a sentence citing it."""
    quotes: dict[int, Quote] = {}
    for sent in checked:
        for q in sent.quotes:
            if q.id not in quotes or q.support > quotes[q.id].support:
                quotes[q.id] = q
    out = [Citation(n, sources[n - 1] if 1 <= n <= len(sources) else None, quote=quotes.get(n))
           for n in cited_numbers(text)]
    taken = {c.id for c in out}
    for sent in checked:
        for n in sent.citations:
            if n not in taken and 1 <= n <= len(sources):
                out.append(Citation(n, sources[n - 1], attributed=True, quote=quotes.get(n)))
                taken.add(n)
    return tuple(out)


def is_refusal(text: str) -> bool:
    """Whether the answer says the sources lack the answer (rather than answering)."""
    stripped = text.strip()
    return not stripped or stripped.startswith(NOT_FOUND[:-1]) or bool(_REFUSAL.search(stripped[:200]))
