"""Definitions and acronyms: what a question asking "what is X" or "what does X stand
for" wants, and where a passage gives it.

A question asks for a definition when it reads "What does X stand for / mean?", "What
is X short for?", "Define X", "What is meant by X?" or "What is (a|an|the) X?" with a
short X. A passage gives it in one of the shapes people write:

- an acronym spelled out around it: "reinforcement learning from human feedback
  (RLHF)", "RAG (retrieval-augmented generation)", "RAG, or retrieval-augmented
  generation,", "RAG stands for ...", "RAG (short for ...)"; the expansion must match
  the acronym's letters in order (small words such as "from" may be skipped);
- a defining sentence: "A X is a ...", "X are ...", "X refers to / means / denotes ...".

`find` returns the span that answers (the expansion, or the definition after the verb)
with the sentence it stands in, as character offsets into the passage. Compromise: an
acronym's letters must start words (or hyphenated parts); "FLOPs" for "floating-point
operations" passes, "SQL" for "Structured Query Language" passes, "GPU" for "graphics
processing unit" passes, "HTTPS" for "HTTP over TLS" does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import sentence_spans

_STAND_FOR = re.compile(
    r"^\s*(?:what\s+(?:does|do)\s+(?:the\s+)?(?:acronym\s+|abbreviation\s+|term\s+)?(?P<a>.+?)\s+(?:stand\s+for|mean)"
    r"|what\s+is\s+(?P<b>.+?)\s+short\s+for"
    r"|what\s+is\s+the\s+(?:full\s+form|expansion|meaning)\s+of\s+(?P<c>.+?)"
    r"|(?:define|expand)\s+(?P<d>.+?)"
    r"|what\s+is\s+meant\s+by\s+(?P<e>.+?)"
    r"|what\s+(?:is|are)\s+(?:an?\s+|the\s+)?(?P<f>.+?))\s*[?.]?\s*$",
    re.I,
)
_SKIPPABLE = frozenset("a an and the of for from to in on with by or as at".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9']*(?:-[A-Za-z0-9']+)*")
# The verbs of a defining sentence, after the term.
_DEFINING = r"(?:is|are|was|were|refers?\s+to|means?|denotes?|describes?|stands?\s+for)\b"


@dataclass(frozen=True)
class Asked:
    term: str  # as the question writes it ("RLHF", "context window")
    acronym: bool  # the term looks like an acronym (capitals, maybe digits or a plural s)


@dataclass(frozen=True)
class Found:
    start: int  # the answering span (the expansion, or what follows the defining verb)
    end: int
    sentence_start: int
    sentence_end: int
    how: str  # "expansion" or "definition"


def asked(question: str) -> Asked | None:
    """The term a definition question asks about, or None for other questions. A "What
    is X?" counts only when X is short (at most four words) and not a wh-clause."""
    m = _STAND_FOR.match(question)
    if not m:
        return None
    which = next(k for k in "abcdef" if m.group(k))
    term = m.group(which).strip(" \"'`")
    term = re.sub(r"^(?:the|an?)\s+", "", term, flags=re.I)
    words = term.split()
    if not words or len(words) > 4 or (which == "f" and re.match(r"(?:how|why|when|where|which|who)\b", term, re.I)):
        return None
    if which == "f" and len(words) > 1 and words[-1].lower() in _SKIPPABLE:
        return None
    return Asked(term, is_acronym(term))


def is_acronym(term: str) -> bool:
    """"RLHF", "GPT", "FLOPs", "LLMs", "BM25", "LoRA": one word, at most 10 characters,
    two or more capitals."""
    return " " not in term and len(term) <= 10 and len(re.findall(r"[A-Z]", term)) >= 2


def find(term: Asked, text: str) -> Found | None:
    """Where the text defines the term: its expansion first (for an acronym), else a
    defining sentence; None when it does neither."""
    if term.acronym:
        hit = _expansion(term.term, text)
        if hit:
            return hit
    return _definition(term.term, text)


def _sentence_of(text: str, start: int, end: int) -> tuple[int, int]:
    for a, b in sentence_spans(text):
        if a <= start < b or (a < end <= b):
            return a, max(b, min(end, len(text)))
    return start, end


def _letters(acronym: str) -> str:
    core = acronym[:-1] if acronym.endswith("s") and acronym[:-1].isupper() else acronym
    return "".join(ch for ch in core.lower() if ch.isalpha())


def spells(acronym: str, phrase: str) -> bool:
    """Whether the phrase's words (or hyphenated parts) start with the acronym's letters
    in order, small words skipped: "reinforcement learning from human feedback" spells RLHF."""
    parts = _parts(phrase)
    capitals = "".join(ch for ch in acronym if ch.isupper() or ch.isdigit()).lower()
    return _spelled(_letters(acronym), parts, 0, 0) or (
        len(capitals) >= 2 and _spelled("".join(c for c in capitals if c.isalpha()), parts, 0, 0))


def _parts(phrase: str) -> list[str]:
    out = []
    for word in _WORD.findall(phrase):
        out += [p for p in word.lower().split("-") if p]
    return out


def _spelled(letters: str, parts: list[str], i: int, j: int) -> bool:
    if i == len(letters):
        return j == len(parts)
    if j == len(parts):
        return False
    part = parts[j]
    if part[0] == letters[i]:
        # a part may give one letter, or several in a row ("FLOPs": floating-point)
        for take in range(1, min(len(part), len(letters) - i) + 1):
            if part[:take] != letters[i : i + take]:
                break
            if _spelled(letters, parts, i + take, j + 1):
                return True
    return part in _SKIPPABLE and _spelled(letters, parts, i, j + 1)


def _expansion(acronym: str, text: str) -> Found | None:
    a = re.escape(acronym)
    n = len(_letters(acronym))
    # "long form (X)": the words before the bracket
    for m in re.finditer(rf"\(\s*{a}\s*\)", text):
        words = list(_WORD.finditer(text, max(0, m.start() - 200), m.start()))
        for take in range(1, min(len(words), n + 4) + 1):
            first = words[-take]
            if not spells(acronym, text[first.start():words[-1].end()]):
                continue
            return _found(text, first.start(), words[-1].end(), "expansion")
    # "X (long form)", "X, or long form,", "X stands for long form", "X (short for long form)"
    after = rf"\b{a}\b(?:\s*\(\s*(?:short\s+for\s+|i\.e\.,?\s+)?|,?\s+(?:or|short\s+for|stands\s+for|means)\s+)"
    for m in re.finditer(after, text):
        words = list(_WORD.finditer(text, m.end(), min(len(text), m.end() + 200)))
        for take in range(n + 4, 0, -1):
            if take > len(words) or text[m.end():words[take - 1].end()].count("(") or re.search(
                    r"[.;:)\n]", text[m.end():words[take - 1].start()]):
                continue
            if spells(acronym, text[words[0].start():words[take - 1].end()]):
                return _found(text, words[0].start(), words[take - 1].end(), "expansion")
    return None


def _definition(term: str, text: str) -> Found | None:
    t = re.escape(term).replace(r"\ ", r"\s+")
    # the term as a sentence's subject: at most a few words before it ("A language model's")
    shape = re.compile(rf"\b{t}s?\s*(?:\([^)]{{0,80}}\)\s*)?,?\s+{_DEFINING}\s*", re.I)
    for a, b in sentence_spans(text):
        m = shape.search(text, a, b)
        if not m or m.end() >= b:
            continue
        line = text.rfind("\n", a, m.start()) + 1 or a  # a heading line run into the sentence is not part of it
        if len(text[line:m.start()].split()) <= 4:
            return Found(m.end(), b, line, b, "definition")
    # "X, a facility that ...": an appositive after the term at a sentence start
    for a, b in sentence_spans(text):
        m = re.match(rf"(?:(?:an?|the)\s+)?{t}s?,\s+an?\s+", text[a:b], re.I)
        if m:
            return Found(a + m.end(), b, a, b, "definition")
    return None


def _found(text: str, start: int, end: int, how: str) -> Found:
    a, b = _sentence_of(text, start, end)
    return Found(start, end, a, b, how)
