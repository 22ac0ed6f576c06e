"""Checks of an LLM answer's sentences that word overlap cannot make: each finds a way
a small model says something its source does not, while sharing the source's words.

- `repeated_words`: a word or phrase said twice in a row ("using on-chip on-chip memory");
- `announces`: a sentence that announces what it does not give ("... for three reasons:"
  followed by one reason, or a sentence ending on a colon with nothing after it);
- `repeats`: a sentence saying again what an earlier one said;
- `misrelates`: a sentence that names something with the source's words but relates
  them otherwise: "The prompt is known as a completion" where the source says the text
  generated after the prompt is known as a completion (the name goes with another subject).

Each returns the reason a sentence is left out of the answer (`Sentence.reason`), or "".
"""

from __future__ import annotations

import re
from typing import Sequence

from .text import content_words, sentence_spans

# Two to four words said again right after themselves; one word only when it is a
# content word (so "had had" and "that that" pass).
_REPEATED = re.compile(r"\b([\w'-]+(?:\s+[\w'-]+){0,3})\s+\1\b", re.I)
_COUNTED = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|several|\d+)\s+(?:main\s+|key\s+|major\s+)?"
                      r"(reasons|ways|steps|things|types|kinds|benefits|factors|advantages|disadvantages|points|"
                      r"parts|stages|options|methods|features|components|categories|examples|uses)\b", re.I)
_COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "several": 2}
# "X is known as Y", "X is called Y", "X is referred to as Y": a naming claim.
_NAMING = re.compile(r"^(?P<subject>.+?)\s+(?:is|are|was|were)\s+(?:also\s+)?"
                     r"(?P<verb>known\s+as|called|referred\s+to\s+as|termed|named|defined\s+as)\s+(?P<name>.+)$", re.I)


def repeated_words(sentence: str) -> str:
    for m in _REPEATED.finditer(sentence):
        if len(m.group(1).split()) > 1 or content_words(m.group(1)):
            return "repetition"
    return ""


def announces(sentence: str, following: Sequence[str]) -> str:
    """"announces" when the sentence ends on a colon with nothing after it, or counts
    items ("three reasons") that the sentences after it do not give as many of."""
    stripped = sentence.rstrip()
    if stripped.endswith(":") and not following:
        return "announces"
    m = _COUNTED.search(sentence)
    if m and stripped.endswith(":"):
        count = m.group(1).lower()
        if len(following) < (int(count) if count.isdigit() else _COUNTS[count]):
            return "announces"
    return ""


def repeats(sentence: str, earlier: Sequence[str]) -> str:
    words = content_words(sentence)
    for before in earlier:
        seen = content_words(before)
        if words and seen and len(words & seen) >= 0.9 * len(words):
            return "repeat"
    return ""


def misrelates(sentence: str, quote: str) -> str:
    """"relation" when the sentence names its subject ("X is known as Y") with a name the
    quote gives to something else: the quote has "known as Y" but not after X."""
    m = _NAMING.match(sentence.strip().rstrip("."))
    if not m:
        return ""
    subject = content_words(m.group("subject"))
    name = content_words(m.group("name"))
    if not subject or not name:
        return ""
    verb = r"\s+".join(m.group("verb").split())
    heads = []  # the subject of each place the quote gives the name
    for a, b in sentence_spans(quote):
        text = quote[a:b]
        for said in re.finditer(rf"\b{verb}\s+(.+)", text, re.I):
            if name & content_words(said.group(1)[:120]):
                heads.append(_subject(text[: said.start()]))
    return "relation" if heads and all(h and not h & subject for h in heads) else ""


_LEADING_PHRASE = re.compile(r"^\s*(?:in|on|for|at|by|with|from|under|within|during|as|after|before)\b[^,]*,\s*", re.I)
_CLAUSE_BREAK = re.compile(r"[,;:]|\b(?:which|that|who|after|before|when|while)\b", re.I)


def _subject(before: str) -> set[str]:
    """The content words of the noun phrase a verb's clause opens with: "The text the
    model generates after the prompt" gives {text, model, generat}; a leading phrase
    ("In machine learning, a prompt") is passed over."""
    return content_words(_CLAUSE_BREAK.split(_LEADING_PHRASE.sub("", before), maxsplit=1)[0])
