"""What kind of answer a question asks for, and whether any passage states one.

Many questions the documents cannot answer look answerable to every other check: "How
many parameters does GPT-4 have?" against a corpus that gives GPT-4's context length,
"Who invented the LSTM network?" against a passage on who introduced the Transformer.
They share the names and most of the words; what is missing is the answer itself, a
number about parameters, a person's name next to "LSTM". So for questions whose answer
has a recognisable shape this asks for a sentence that holds it:

- `number` (how many / much / large / long / old ..., what percentage / size / score ...):
  a number the question does not contain, not a bare year, in a sentence that also holds
  one of the question's other words (what is counted: "parameters", "vocabulary");
- `year` (in what year, when was / did ...): a year the question does not contain, in a
  sentence that holds one of the question's other words;
- `name` (who invented / proposed / wrote / founded ..., which university / company /
  research group ...): a capitalised name the question does not contain. Other "who"
  questions often want a description ("who manages a construction job": an architect).

The sentence, with the one before it and its chunk's heading, must also mention one of
the question's names, its numbers aside (rag/facts.py). Other questions (what is, why,
how does, how often) have no checkable shape and pass. `ask` declines with "not_stated"
when no retrieved passage holds such a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .facts import is_plain_number, is_year, mentions, names, numbers
from .text import content_words, sentence_spans
from .types import Hit

# The question's first wh-phrase says what kind of answer it wants ("Which setting decides
# how many clusters..." asks for a setting, not a number).
_WH = re.compile(r"\b(how|what|which|who|whom|whose|when|where|why)\b((?:\s+[\w-]+){0,3})", re.I)
# "how often" is left out: its answers are mostly words ("monthly", "every week")
_HOW_NUMBER = frozenset("many much large big long old fast high wide tall far heavy small".split())
_WHAT_NUMBER = frozenset(("percentage percent fraction proportion share number size length score rate resolution "
                          "bandwidth dimension dimensions dimensionality speed accuracy count rank depth width price cost "
                          "temperature capacity latency throughput").split())
_WHICH_NAME = frozenset(("university company lab laboratory organisation organization institution institute "
                         "firm researcher researchers author authors").split())
_AUTHORED = re.compile(r"\b(invent|propos|creat|wr[io]te|written|found|introduc|develop|discover|coin|design|"
                       r"publish|populari[sz]|describ|devis|author|led|build|built)\w*", re.I)
# The words that say what kind of answer is wanted, not what it is about.
_ASKING = frozenset(content_words(
    "how many much large big long old fast high wide tall far heavy small often what which year when who whom "
    "percentage percent fraction proportion share number size length score rate count first his her their"))


@dataclass(frozen=True)
class Expected:
    kind: str  # "number", "year" or "name"
    names: tuple[str, ...]  # the question's names and numbers, as written
    about: frozenset[str]  # the question's other content words: what the answer is about
    asked: frozenset[str]  # the names lowercased: what a new answer must not be
    subject: tuple[str, ...]  # the names that are not plain numbers ("the 2017 transformer": not 2017)


def expected(question: str) -> Expected | None:
    """The kind of answer the question asks for, or None when its shape is not checkable."""
    kind = _kind(question)
    if not kind:
        return None
    asked = names(question)
    lowered = frozenset(w.lower() for w in asked)
    about = frozenset(w for w in content_words(question) if w not in _ASKING and w not in lowered)
    return Expected(kind, tuple(asked), about, lowered, tuple(w for w in asked if not is_plain_number(w)))


def _kind(question: str) -> str:
    m = _WH.search(question)
    if not m:
        return ""
    wh, following = m.group(1).lower(), m.group(2).lower().split()
    first = following[0] if following else ""
    if wh in ("who", "whom"):  # "Who manages a construction job?" wants "an architect": only authorship asks for a name
        return "name" if _AUTHORED.search(question) else ""
    if wh == "when":
        return "year" if first in ("was", "were", "did", "is", "does") else ""
    if wh == "how":
        return "number" if first in _HOW_NUMBER else ""
    if wh in ("what", "which"):  # the noun may come a word or two later: "what context window length"
        for word in following:
            if word == "year":
                return "year"
            if word in _WHAT_NUMBER:
                return "number"
            if word in _WHICH_NAME or (word == "group" and "research" in following):
                return "name"
            if word in _VERBS:
                break
    return ""


_VERBS = frozenset("is are was were did does do has have had can could will would should".split())


def stated(question: str, hits: Sequence[Hit]) -> bool:
    """Whether some passage of the hits holds an answer of the kind the question asks for
    (True when the question's kind is not checkable)."""
    want = expected(question)
    if want is None:
        return True
    return any(_holds(want, hit) for hit in hits)


def _holds(want: Expected, hit: Hit) -> bool:
    spans = sentence_spans(hit.text)
    texts = [hit.text[a:b] for a, b in spans]
    for i, sentence in enumerate(texts):
        before = [hit.heading, *texts[max(0, i - 1):i]]
        # "It began as ... in 1994" after "... byte-pair encoding (BPE).": the sentence
        # before says what "It" is, so its words count as the sentence's own
        words = content_words(f"{texts[i - 1]} {sentence}" if i and _POINTS_BACK.match(sentence) else sentence)
        if _candidate(want, sentence, words) and _about_the_subject(want, sentence, before):
            return True
    return False


_TIME = re.compile(r"\b(century|centuries|decade|decades|years? ago|january|february|march|april|may|june|july|"
                   r"august|september|october|november|december|\d+(st|nd|rd|th|s))\b", re.I)
_AMOUNT_WORDS = re.compile(r"\b(an?|one|a few|several|half an?)\s+(second|minute|hour|day|week|month|year|decade)s?\b"
                           r"|\b(dozens?|hundreds|thousands|millions|billions)\b", re.I)
_POINTS_BACK = re.compile(r"^(it|its|this|these|they|their|he|she|his|her)\b", re.I)


def _new(word: str, asked: frozenset[str]) -> bool:
    """A name of the sentence that is none of the question's ("LSTMs" is the question's "LSTM")."""
    w = word.lower()
    return not any(a in w or w in a for a in asked)


def _candidate(want: Expected, sentence: str, words: set[str]) -> bool:
    """Whether the sentence holds a new answer of the wanted kind and something the
    question is about (one of its other words)."""
    asked = want.asked
    values = [n for n in numbers(sentence) if n.value not in asked]
    if want.kind in ("name", "year"):  # for these the question's name in the sentence is as good as its words
        lowered = sentence.lower()
        if want.about and not want.about & words and not any(mentions(lowered, w) for w in want.subject):
            return False
        if want.kind == "name":
            return any(_new(w, asked) and not w[:1].isdigit() for w in names(sentence))
        # any number or time word: "in 911", "the 1050s", "11th century", "early 1990s"
        return bool(values) or bool(_TIME.search(sentence)) or _new_figure(sentence, asked)
    if want.about and not want.about & words:
        # the number may still carry what is asked as its unit: "28.4 BLEU" for "what BLEU score"
        measured = want.about | content_words(" ".join(want.names))
        return any(n.unit and content_words(n.unit) & measured for n in values)
    # "2-4x", "$1.5bn", "40x": a word with a digit counts too when it is no name of the question;
    # so does an amount in words: "about an hour", "a few days", "a dozen"
    return any(not is_year(n.value) or n.unit for n in values) or bool(_AMOUNT_WORDS.search(sentence)) or \
        _new_figure(sentence, asked)


def _new_figure(sentence: str, asked: frozenset[str]) -> bool:
    """A word of the sentence with a digit in it that is no name of the question ("1050s", "40x")."""
    return any(any(c.isdigit() for c in w) and _new(w, asked) for w in names(sentence))


def _about_the_subject(want: Expected, sentence: str, before: list[str]) -> bool:
    """Whether the sentence, with the heading and the sentence before it, speaks of the
    question's subject: mentions one of its names ("It has 7 billion parameters" after
    "Mistral 7B ..."). A question's numbers are qualifiers ("the 2017 transformer") and
    need not be there."""
    context = " ".join([*before, sentence]).lower()
    return not want.subject or any(mentions(context, w) for w in want.subject)
