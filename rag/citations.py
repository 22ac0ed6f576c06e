"""Finds the [n] citations in an answer and matches them to the numbered sources.

A number that names no source is kept as an invalid citation, so it is shown, not hidden.
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


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance, each once."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def extract_citations(text: str, sources: Sequence[Hit]) -> tuple[Citation, ...]:
    return tuple(Citation(n, sources[n - 1] if 1 <= n <= len(sources) else None) for n in cited_numbers(text))


def is_refusal(text: str) -> bool:
    """Whether the answer says the sources lack the answer (rather than answering)."""
    stripped = text.strip()
    return not stripped or stripped.startswith(NOT_FOUND[:-1]) or bool(_REFUSAL.search(stripped[:200]))
