"""The words of a question that a lexical (BM25) search looks for, shared by the stores."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")
STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our so than that the their them then there these they this to was we were what when where "
    "which while who whom why will with would you your".split()
)


def content_words(text: str) -> list[str]:
    """The question's words, lowercased, without stop words and one-letter words, each once."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOP))


def fts_query(text: str) -> str:
    """A natural-language question -> an SQLite FTS5 expression: its content words, OR-ed."""
    return " OR ".join(f'"{w}"' for w in content_words(text))
