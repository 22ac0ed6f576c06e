"""PDF page text that reads well: words broken across lines joined again, and running
headers, footers and page numbers taken out. Pure functions over the pages' text,
applied before a Page is made, so the stored page text (which quotes and chunk spans
index into) is the cleaned text.

Hyphens: a line that ends in a hyphen after a lowercase letter and goes on with a
lowercase letter is a broken word ("Ex-\\nisting" -> "Existing") unless the document
says otherwise: the hyphenated form written elsewhere ("large-scale") keeps the
hyphen; the joined form written elsewhere joins; failing both, two halves that are
each words of the document (three letters or more) make a compound ("self-attention")
and the rest join. On the shared real-world PDFs: of pm-naacl06-shinyama.pdf's 103
such breaks, 99 syllable breaks were joined and "single-document" kept, but three
compounds whose halves the paper never writes alone were joined ("semiautomatically",
"postseason", "goahead"); sf-multicolumn.pdf's 30 were all syllable breaks, all joined.

Page furniture: a line among the first two or last two lines of a page that recurs,
digits aside, at the same end of at least 40% of the pages (three at least) is a
running header or footer and is dropped: "Page 3 of 10", a bare page number, a
journal's title. 40%, not a half, so headers that alternate between left and right
pages go too. A document of one or two pages keeps everything.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be furniture
MIN_SHARE = 0.4  # of the pages on which a line must recur to be furniture
MIN_PAGES = 3

_HYPHENS = "-\u00ad\u2010"  # hyphen-minus, soft hyphen, hyphen
_LETTERS = r"[^\W\d_]+"  # letters of any script
_BREAK = re.compile(rf"({_LETTERS})[{_HYPHENS}][ \t]*\n[ \t]*({_LETTERS})")
_WORD = re.compile(rf"{_LETTERS}(?:[-\u2010]{_LETTERS})*")
# Typographic ligatures as PDFs often give them ("ﬁnding"): neither the embedder's
# vocabulary nor a typed query has them.
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})


def clean_pages(texts: dict[int, str]) -> dict[int, str]:
    """Each page's text with ligatures spelt out, the document's furniture dropped and
    broken words joined."""
    texts = drop_furniture({number: text.translate(_LIGATURES) for number, text in texts.items()})
    vocabulary = _vocabulary(texts.values())
    return {number: join_hyphens(text, vocabulary) for number, text in texts.items()}


def join_hyphens(text: str, vocabulary: Counter[str] | None = None) -> str:
    """Join the words broken at line ends (see the module docstring); `vocabulary`
    counts the document's words as _vocabulary does (default: this text's)."""
    words = vocabulary if vocabulary is not None else _vocabulary([text])

    def mend(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        if not (head[-1].islower() and tail[0].islower()):
            return m.group(0)  # "arti-\nWeb", "COVID-\n19": not a broken word
        hyphenated, joined = f"{head}-{tail}".lower(), (head + tail).lower()
        if words[hyphenated] > 0:
            return f"{head}-{tail}"
        if words[joined] > 0:
            return head + tail
        if len(head) >= 3 and len(tail) >= 3 and words[head.lower()] > 0 and words[tail.lower()] > 0:
            return f"{head}-{tail}"
        return head + tail

    return _BREAK.sub(mend, text)


def drop_furniture(texts: dict[int, str]) -> dict[int, str]:
    """The pages without their running headers and footers (see the module docstring)."""
    if len(texts) < MIN_PAGES:
        return dict(texts)
    need = max(MIN_PAGES, math.ceil(MIN_SHARE * len(texts)))
    tops: Counter[str] = Counter()
    bottoms: Counter[str] = Counter()
    for text in texts.values():
        head, foot = _edges(text)
        tops.update({_key(text, i) for i in head})
        bottoms.update({_key(text, i) for i in foot})
    top_keys = {k for k, n in tops.items() if n >= need and k}
    bottom_keys = {k for k, n in bottoms.items() if n >= need and k}
    if not top_keys and not bottom_keys:
        return dict(texts)
    out: dict[int, str] = {}
    for number, text in texts.items():
        head, foot = _edges(text)
        drop = {i for i in head if _key(text, i) in top_keys} | {i for i in foot if _key(text, i) in bottom_keys}
        if set(head) | set(foot) <= drop:
            drop = set()  # a page of furniture only is more likely a page of short repeated text
        lines = text.split("\n")
        out[number] = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    return out


def _edges(text: str) -> tuple[list[int], list[int]]:
    """Indexes of the first and last EDGE_LINES non-blank lines."""
    filled = [i for i, line in enumerate(text.split("\n")) if line.strip()]
    return filled[:EDGE_LINES], filled[-EDGE_LINES:]


def _key(text: str, index: int) -> str:
    """A line as furniture is compared: case, spacing and digits aside ("Page 3" ~ "page 12")."""
    line = text.split("\n")[index]
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _vocabulary(texts: Iterable[str]) -> Counter[str]:
    """Lowercased words and hyphenated compounds written within lines (a line-end
    break does not count as an occurrence of either form)."""
    counts: Counter[str] = Counter()
    for text in texts:
        for word in _WORD.findall(_BREAK.sub(" ", text)):
            word = word.lower().replace("\u2010", "-")
            counts[word] += 1
            if "-" in word:  # the parts of a compound are words of the document too
                counts.update(word.split("-"))
    return counts
