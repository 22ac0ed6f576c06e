"""Finds the citations in an answer and matches them to the numbered sources.

Explicit citations are the [n] markers the model wrote; a number that names no source
is kept as an invalid citation, so it is shown, not hidden. A sentence that cites
nothing but restates a source (most of its content words appear in a passage of it,
as rag/verify.py checks) is attributed to it; small models often answer from a source
without citing it.
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
# Sentence ends: . ! ? (and a closing quote or bracket) before white space, a blank
# line, or a line break before a list item, heading or table row. A single line break
# inside a paragraph (hard-wrapped Markdown, PDF lines) does not end a sentence.
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]?\s+|\n\s*\n\s*|\n(?=\s*(?:#|[-*+] |\d+[.)] |\|))")
_ABBREV = re.compile(r"(?:^|[\s(])(?:[A-Za-z]|e\.g|i\.e|vs?|etc|al|Dr|Mr|Mrs|Ms|Fig|No|cf)\.$")
_POSSESSIVE = re.compile(r"['’]s\b")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+|\.\d+)*")  # "0.5" and "gpt-3.5" stay whole
_STOP = frozenset(
    "a an and are as at be been but by can do does for from has have how if in into is it its of on or "
    "that the their then there these they this to was were what when which while who why will with "
    "you your our we not no than also such so may more most other some many much did done whom whose where "
    "has had does use used using called known get gets got go goes went let lets".split()
)

# Share of a sentence's content words that must occur in a source to attribute it.
# 0.6 accepts paraphrase with a few words of its own and rejects generic filler
# ("This is important for many reasons") that shares only common words.
ATTRIBUTION_THRESHOLD = 0.6


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance, each once."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def is_stop_word(word: str) -> bool:
    return word.lower() in _STOP


def content_words(text: str) -> set[str]:
    """Lowercased words minus stop words, lightly stemmed ("scores" -> "score")."""
    return set(word_forms(text))


def word_forms(text: str) -> dict[str, str]:
    """Each content word of the text (as content_words gives it) with the first form it
    had in the text: the form to look up in an index with a stemmer of its own."""
    out: dict[str, str] = {}
    for w in _WORD.findall(_POSSESSIVE.sub("", text.lower())):
        f = _fold(w)
        if w not in _STOP and f not in _STOP and len(f) > 1:
            out.setdefault(f, w)
    return out


def _fold(word: str) -> str:
    """A light stemmer: "scores" -> "score", "appended"/"appending" -> "append"."""
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s":
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words that occur in the source."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(source_text)) / len(words)


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of the text, white space trimmed."""
    spans, pos = [], 0
    for m in [*_SENTENCE.finditer(text), None]:
        if m and _ABBREV.search(text, max(0, m.start() - 8), m.start()):
            continue  # "Mata v. Avianca", "e.g. this": not a sentence end
        end = m.start() if m else len(text)
        if m and m.group(0)[:1] in "\"')]":  # the closing mark belongs to the sentence
            end += 1
        piece = text[pos:end]
        if piece.strip():
            a = pos + len(piece) - len(piece.lstrip())
            spans.append((a, pos + len(piece.rstrip())))
        pos = m.end() if m else pos
    return spans


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
