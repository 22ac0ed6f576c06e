"""Names and numbers: the words word overlap cannot judge.

A sentence that shares most of its words with a passage can still get the one fact that
matters wrong: "the rear tyre takes 65 psi" against "the front tyre takes 65 psi and the
rear tyre 70 psi" shares every word. So answer checking (rag/verify.py) asks two more
things of a passage before it counts as support:

- every number of the sentence occurs in it (with the sentence's unit, when the passage
  gives one), and every name (a capitalised word inside the sentence, an acronym, a word
  with a digit such as GPT-2) is mentioned in it (an acronym may be spelled out);
- each number is stated of the same thing: the passage is cut into clauses (lines, table
  rows, sentences, and the parts joined by ";", "and", "but", "whereas", "while"), and
  when another clause gives a different value in the same unit while sharing more of the
  sentence's words than any clause holding the sentence's value, the value belongs to
  something else. Where the passage does not make the binding visible (both values in
  one clause), occurrence is all that is asked.

The same names-and-numbers reading finds the question's terms that no source mentions
(rag/verify.missing_terms), one of the reasons `ask` declines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import content_words, is_stop_word

# Names and numbers: a word with a capital letter after its first character, or a
# capitalised word that does not start the text, or any word with a digit.
_TERM = re.compile(r"[A-Za-z0-9](?:[\w.+/-]|,(?=\d{3}\b))*[\w+]|[A-Za-z0-9]")  # 1,000-token is one
_STOP_TERMS = frozenset("i a the".split())
# Capitalised words an answer uses to talk about its sources rather than the topic.
_FRAME_NAMES = frozenset("source sources document documents passage passages context answer question".split())

# A number standing alone (not part of a name such as GPT-4 or 7B), with the word after
# it, which may be its unit ("65 psi", "7.3 billion", "40 %").
_NUMBER = re.compile(r"(?<![\w.\-/])([$€£])?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
                     r"(?:([A-Za-z]{1,4})\b|(?![\w\-/]|\.\d)(?:\s*(%|[A-Za-z]+))?)")
# A unit written onto the number: 7B = 7 billion, 100MB, 5ms; an ordinal (11th) has none.
_MAGNITUDE = {"k": "thousand", "m": "million", "b": "billion", "st": "", "nd": "", "rd": "", "th": ""}
_CURRENCY = {"$": "dollar", "€": "euro", "£": "pound"}
_SOURCE_REF = re.compile(r"\b(?:sources?|documents?|passages?)\s+\d+(?:\s*(?:,|and|&)\s*\d+)*", re.I)  # "Source 2"
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {"hundred": "100", "thousand": "1000", "dozen": "12",
                                                   "twice": "2", "double": "2", "half": "0.5"}
_SPELLED = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b(?:\s+([A-Za-z]+))?", re.I)
# Where one clause ends and the next begins inside a sentence or line.
_CLAUSE_CUT = re.compile(r";\s*|\s+(?:and|but|whereas|while)\s+|,\s+(?:and|but|whereas|while)\s+", re.I)
_LINE_CUT = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z0-9])")
_ROW = re.compile(r"^[^:;\n]{1,60}:\s*[^;\n]*(?:;\s*[^:;\n]{1,60}:\s*[^;\n]*)+$")  # "Header: value; Header: value"


def names(text: str) -> list[str]:
    """The text's names and numbers as written (GPT-2, Mistral, 1998): words with an inner
    capital or a digit, and capitalised words after the first."""
    out = []
    for i, m in enumerate(_TERM.finditer(text)):
        word = re.sub(r"'s$", "", m.group(0))
        named = any(c.isupper() for c in word[1:]) or (i > 0 and word[:1].isupper())
        if (named or any(c.isdigit() for c in word)) and word.lower() not in _STOP_TERMS:
            out.append(word)
    return out


def mentions(lowered: str, word: str) -> bool:
    """Whether lowercased text names the term: whole, all its hyphen/dot parts as words, its letter
    and digit parts each at the start of a word ("float32": "32-bit floats") or, for an
    acronym of three letters or more, spelled out ("FLOPs": "floating-point operations")."""
    term = word.lower()
    if term in lowered or all(re.search(rf"(?<![a-z0-9]){re.escape(part)}(?![a-z0-9])", lowered)
                              for part in re.split(r"[-/.]", term) if part):
        return True
    parts = re.findall(r"[a-z]+|[0-9]+", term)
    if len(parts) > 1 and all(
        len(p) > 1 and re.search(rf"\b{p}" + (r"\b" if p.isdigit() else ""), lowered) for p in parts
    ):
        return True
    stem = re.sub(r"s$", "", word)  # the plural of an acronym is a lowercase s: FLOPs, LLMs
    return _is_acronym(word) and len(stem) >= 3 and _spelled_out(lowered, stem.lower())


def _is_acronym(word: str) -> bool:
    """Two capitals or more and letters only, a plural "s" allowed: LSTM, FLOPs, RAM."""
    return sum(c.isupper() for c in word) >= 2 and re.fullmatch(r"[A-Z][A-Za-z]*", word) is not None


def _spelled_out(lowered: str, acronym: str) -> bool:
    """Whether two or more consecutive words of the text begin with successive pieces of
    the acronym, stop words counting for nothing and skipped between them: "lstm" in "long
    short-term memory", "flop" in "floating-point operations", "rlhf" in "reinforcement
    learning from human feedback" (but "aws" not in "as we saw")."""
    words = re.findall(r"[a-z]+", lowered)

    def spells(rest: str, j: int) -> bool:
        if not rest:
            return True
        if j < len(words) and is_stop_word(words[j]):
            return spells(rest, j + 1)
        w = words[j] if j < len(words) else ""
        return any(spells(rest[n:], j + 1) for n in range(min(len(w), len(rest)), 0, -1) if w[:n] == rest[:n])

    return any(w.startswith(acronym[0]) and not w.startswith(acronym) and not is_stop_word(w) and spells(acronym, i)
               for i, w in enumerate(words))


@dataclass(frozen=True)
class Number:
    value: str  # normalised: "1,000" -> "1000", "65.0" -> "65", "seven" -> "7"
    unit: str  # the word after it, lowercased, plural "s" dropped ("" when none)


def numbers(text: str) -> list[Number]:
    """The numbers that stand alone in the text, each with the word after it."""
    found = [Number(_value(m.group(2)), _glued(m.group(3)) if m.group(3) else
                    _unit(m.group(4)) or _CURRENCY.get(m.group(1) or "", ""))
             for m in _NUMBER.finditer(text)]
    found += [Number(_NUMBER_WORDS[m.group(1).lower()], _unit(m.group(2))) for m in _SPELLED.finditer(text)]
    return found


def _glued(letters: str) -> str:
    low = letters.lower()
    return _MAGNITUDE.get(low, low)


def _value(digits: str) -> str:
    plain = digits.replace(",", "")
    return plain.rstrip("0").rstrip(".") if "." in plain else plain


def _unit(word: str | None) -> str:
    if not word:
        return ""
    word = word.lower()
    if word in ("%", "percent"):
        return "%"
    return "" if is_stop_word(word) else re.sub(r"(?<=[a-z]{3})s$", "", word)


def clauses(passage: str) -> list[str]:
    """The passage cut where one statement ends: lines, sentences, and the parts of a
    sentence joined by ";", "and", "but", "whereas", "while"; a table row ("Header:
    value; Header: value") stays whole."""
    out = []
    for line in _LINE_CUT.split(passage):
        line = line.strip()
        if line:
            out.extend(p for p in ([line] if _ROW.match(line) else _CLAUSE_CUT.split(line)) if p.strip())
    return out


def unbound(claim: str, passage: str) -> list[str]:
    """The claim's names and numbers that the passage does not state (of the same thing,
    for numbers, where it shows which thing): empty when the passage bears them all out."""
    claim = _SOURCE_REF.sub(" ", claim)
    lowered = passage.lower()
    wrong = [w for w in names(claim) if _checked_name(w) and not mentions(lowered, w)]
    wanted = numbers(claim)
    if not wanted:
        return wrong
    context = content_words(_NUMBER.sub(" ", claim))
    claimed = {n.value for n in wanted}
    parts = [(content_words(_NUMBER.sub(" ", c)), numbers(c), c.lower()) for c in clauses(passage)]
    for n in wanted:
        holding = [words for words, found, text in parts if _states(n, found, text)]
        # a clause giving another value in the same unit, unless that value is the claim's too
        rivals = [words for words, found, text in parts
                  if any(f.value != n.value and f.value not in claimed and _same_unit(n, f, text) for f in found)]
        if not holding or not any(_bound(context, h, rivals) for h in holding):
            wrong.append(f"{n.value} {n.unit}".strip())
    return wrong


def _bound(claim: set[str], holding: set[str], rivals: list[set[str]]) -> bool:
    """Whether a clause holding the claim's value is about what the claim is about: no
    rival clause shares more of the claim's words, or names something of the claim the
    holding clause lacks ("rear") while the holding clause names something the claim does
    not ("front" in "the front tyre takes 65 psi and the rear tyre 70 psi")."""
    for rival in rivals:
        if len(claim & rival) > len(claim & holding):
            return False
        if claim & (rival - holding) and (holding - rival) - claim:
            return False
    return True


def _checked_name(word: str) -> bool:
    """Names are checked here, but not plain numbers (bound below) nor the words an answer
    uses for its sources ("Source 2 says...")."""
    return word.lower() not in _FRAME_NAMES and not is_plain_number(word)


def _states(n: Number, found: list[Number], text: str) -> bool:
    """Whether a clause gives the number in the claim's unit (its own unit word after the
    number, or the unit named elsewhere in the clause, e.g. a table header "Pressure (psi)")."""
    return any(f.value == n.value and (not n.unit or f.unit == n.unit or (not _is_unit_clash(n, f) and n.unit in text))
               for f in found)


def _is_unit_clash(n: Number, f: Number) -> bool:
    return bool(f.unit) and f.unit != n.unit and len(f.unit) <= 5 and f.unit.isalpha() and len(n.unit) <= 5


def _same_unit(n: Number, f: Number, text: str) -> bool:
    """Whether another number of a clause measures the same kind of thing as the claim's."""
    if n.unit:
        return f.unit == n.unit or (not f.unit and n.unit in text)
    return not f.unit and is_year(n.value) == is_year(f.value)


def is_plain_number(word: str) -> bool:
    """A name that is only a number ("2017", "1.5"), not a name with a number in it (GPT-4)."""
    return re.fullmatch(r"[\d.,]+", word) is not None


def is_year(value: str) -> bool:
    """A normalised number value (Number.value) that reads as a year."""
    return len(value) == 4 and value.isdigit() and 1000 <= int(value) <= 2200
