"""Text analysis: words, stop lists, light stemming, paragraphs and sentences, one
definition each.

Two kinds of words, with different names because they mean different things:

- search terms (`search_terms`, `fts_query`, `INDEX_WORD`) are what the lexical (BM25)
  index holds and looks up: runs of Unicode letters and digits, as SQLite's unicode61
  tokenizer splits them. Changing them changes the stored FTS/Milvus terms, so they
  must stay exactly as they are for an existing index to keep working.
- content words (`content_words`, `word_forms`) are what answer checking compares:
  ASCII letters and digits joined by inner hyphens, apostrophes and decimal points
  ("gpt-3.5", "don't", "0.5"), a longer stop list dropped, and a plural "s" and an
  "-ed"/"-ing" folded away. Compromise: a non-ASCII letter ends such a word ("café"
  gives "caf"); both sides of a comparison are split the same way, so matching holds.

Sentences come in two strengths (see `sentence_spans`): chunking splits only before a
capital letter or digit, answer checking knows abbreviations and list items.
"""

from __future__ import annotations

import re

# --- search terms: the lexical index's words ---------------------------------------

INDEX_WORD = re.compile(r"[^\W_]+")  # what SQLite's unicode61 tokenizer calls a token
SEARCH_STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our so than that the their them then there these they this to was we were what when where "
    "which while who whom why will with would you your".split()
)


def search_terms(text: str) -> list[str]:
    """The words a lexical search looks for: lowercased, without stop words and
    one-letter words, each once, in order."""
    return list(dict.fromkeys(w for w in INDEX_WORD.findall(text.lower()) if len(w) > 1 and w not in SEARCH_STOP_WORDS))


def fts_query(text: str) -> str:
    """A natural-language question -> an SQLite FTS5 expression: its search terms, OR-ed."""
    return " OR ".join(f'"{w}"' for w in search_terms(text))


# --- content words: what answer checking compares ----------------------------------

_JOINED = r"[-'][a-z0-9]+"  # "kv-cache", "don't"
_WORD = re.compile(rf"[a-z0-9]+(?:{_JOINED}|\.\d+)*")  # "0.5" and "gpt-3.5" stay whole
_WORD_NO_DECIMALS = re.compile(rf"[a-z0-9]+(?:{_JOINED})*")
_POSSESSIVE = re.compile(r"['’]s\b")
STOP_WORDS = frozenset(
    "a an and are as at be been but by can do does for from has have how if in into is it its of on or "
    "that the their then there these they this to was were what when which while who why will with "
    "you your our we not no than also such so may more most other some many much did done whom whose where "
    "has had does use used using called known get gets got go goes went let lets".split()
)


def words(text: str, *, decimals: bool = True) -> list[str]:
    """The text's words, lowercased: ASCII letters and digits, joined by inner hyphens and
    apostrophes, and (decimals=True) by a point before digits, so "0.5" stays whole.

    Args:
        decimals: False splits "gpt-3.5" into "gpt-3" and "5". The chat follow-up rule
            uses that split: it appends the words it finds to the query, so joining them
            would change which words a follow-up gains.
    """
    return (_WORD if decimals else _WORD_NO_DECIMALS).findall(text.lower())


def is_stop_word(word: str) -> bool:
    return word.lower() in STOP_WORDS


def light_stem(word: str) -> str:
    """A light stemmer for a lowercased word: "scores" -> "scor", "appended"/"appending"
    -> "append"; a silent "e" goes too, so "announce" meets "announced" and "score"
    "scored" ("announc", "scor"); "ss" endings and short words stay ("class", "bus", "size")."""
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s":
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word[:-1] if len(word) >= 5 and word.endswith("e") and word[-2] != "e" else word


def word_forms(text: str) -> dict[str, str]:
    """Each content word of the text (as content_words gives it) with the first form it
    had in the text: the form to look up in an index with a stemmer of its own."""
    out: dict[str, str] = {}
    for w in words(_POSSESSIVE.sub("", text.lower())):
        f = light_stem(w)
        if w not in STOP_WORDS and f not in STOP_WORDS and len(f) > 1:
            out.setdefault(f, w)
    return out


def content_words(text: str) -> set[str]:
    """Lowercased words minus stop words, possessives dropped and lightly stemmed
    ("The model's scores" -> {"model", "score"})."""
    return set(word_forms(text))


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words that occur in the source (0 when it has none)."""
    wanted = content_words(sentence)
    if not wanted:
        return 0.0
    return len(wanted & content_words(source_text)) / len(wanted)


# --- paragraphs and sentences ------------------------------------------------------

# A blank line, or a line break before a list item.
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t]+)")
# Chunking: . ! ? (and any closing quotes or brackets, which go with the gap) before
# white space and a capital letter or digit, optionally after an opening quote or bracket.
_CAPITAL_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# Answer checking: . ! ? (and a closing quote or bracket) before white space, a blank
# line, or a line break before a list item, heading or table row. A single line break
# inside a paragraph (hard-wrapped Markdown, PDF lines) does not end a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+|\n\s*\n\s*|\n(?=\s*(?:#|[-*+] |\d+[.)] |\|))")
_ABBREV = re.compile(r"(?:^|[\s(])(?:[A-Za-z]|e\.g|i\.e|vs?|etc|al|Dr|Mr|Mrs|Ms|Fig|No|cf)\.$")
_CLOSING = "\"')]"


def _pieces(text: str, start: int, end: int, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) of the non-blank pieces of text[start:end] between the cuts (ordered
    (start, end) spans of separators), white space trimmed."""
    spans, pos = [], start
    for a, b in [*cuts, (end, end)]:
        piece = text[pos:a]
        if piece.strip():
            spans.append((pos + len(piece) - len(piece.lstrip()), pos + len(piece.rstrip())))
        pos = b
    return spans


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of text[start:end]: pieces between blank lines, a
    list item its own paragraph, white space trimmed."""
    end = len(text) if end is None else end
    return _pieces(text, start, end, [m.span() for m in _PARAGRAPH_BREAK.finditer(text, start, end)])


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, *, capital_next: bool = False
) -> list[tuple[int, int]]:
    """(start, end) of each sentence of text[start:end], white space trimmed.

    Args:
        capital_next: the chunker's rule, for text already split into paragraphs. A
            sentence ends at . ! ? only before a capital letter or digit, so "e.g. this"
            needs no abbreviation list (while "Mr. Smith" splits); closing quotes and
            brackets after the mark are left between the sentences. Chunk boundaries
            follow this rule, so changing it changes every index built from now on.
            False (answer checking): a sentence ends at . ! ? before any word, except
            after a known abbreviation ("e.g.", "Mata v. Avianca"), and at a blank line
            or a line break before a list item, heading or table row; a closing quote
            or bracket stays with its sentence.
    """
    end = len(text) if end is None else end
    if capital_next:
        cuts = [m.span() for m in _CAPITAL_SENTENCE_END.finditer(text, start, end)]
    else:
        cuts = [(m.start() + (m.group(0)[:1] in _CLOSING), m.end())
                for m in _SENTENCE_END.finditer(text, start, end)
                if not _ABBREV.search(text, max(0, m.start() - 8), m.start())]
    return _pieces(text, start, end, cuts)


def sentences(text: str) -> list[str]:
    """The sentences of an answer or source, by the answer-checking rule."""
    return [text[a:b] for a, b in sentence_spans(text)]
