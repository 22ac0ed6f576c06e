"""Pure functions: page text -> chunks with character spans, heading paths and token counts.

Structure first: a page is cut into sections at Markdown/RST headings, sections into
paragraphs and list items, those into sentences (both split by rag/text.py), and an
over-long sentence into runs of words. Sentences are then packed greedily into chunks
that never cross a section and never exceed the token limit, each new chunk repeating
the trailing sentences of the previous one up to the overlap. Token counts come from the embedder's own
tokenizer (passed in), since that is what truncates.

Compromise: a sentence longer than the limit is cut between words, so its halves are
embedded apart; that is rare in prose and better than silent truncation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from .text import paragraph_spans, sentence_spans
from .types import Chunk, Page

CountTokens = Callable[[Sequence[str]], list[int]]

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_FENCE = re.compile(r"^(```|~~~)", re.M)
_RST_ADORN = re.compile(r"^([=\-~^*#+`:.'\"_])\1{2,}[ \t]*$")


@dataclass(frozen=True)
class Section:
    heading: str  # "Title > Subtitle"
    start: int
    end: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def sections(text: str, kind: str) -> list[Section]:
    """Split page text at headings; the heading lines themselves belong to no section."""
    if kind in ("markdown", "html"):
        marks = _markdown_headings(text)
    elif kind == "rst":
        marks = _rst_headings(text)
    else:
        marks = []
    out: list[Section] = []
    path: list[tuple[int, str]] = []
    pos = 0
    heading = ""
    for line_start, body_start, level, title in marks:
        if line_start > pos:
            out.append(Section(heading, pos, line_start))
        path = [p for p in path if p[0] < level] + [(level, title)]
        heading = " > ".join(t for _, t in path)
        pos = body_start
    if pos < len(text):
        out.append(Section(heading, pos, len(text)))
    return [s for s in out if text[s.start : s.end].strip()]


def _markdown_headings(text: str) -> list[tuple[int, int, int, str]]:
    fenced = _fenced_ranges(text)
    marks = []
    for m in _MD_HEADING.finditer(text):
        if any(a <= m.start() < b for a, b in fenced):
            continue
        marks.append((m.start(), m.end(), len(m.group(1)), m.group(2).strip()))
    return marks


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    fences = [m.start() for m in _FENCE.finditer(text)]
    return [(fences[i], fences[i + 1]) for i in range(0, len(fences) - 1, 2)]


def _rst_headings(text: str) -> list[tuple[int, int, int, str]]:
    """RST titles: a text line underlined (optionally also overlined) by one repeated
    punctuation character at least as long as the title. Levels follow the order in
    which adornment styles first appear, as docutils does."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    styles: list[tuple[str, bool]] = []
    marks = []
    i = 0
    while i < len(lines) - 1:
        title, under = lines[i].rstrip(), lines[i + 1].rstrip()
        m = _RST_ADORN.match(under)
        if title.strip() and not _RST_ADORN.match(title) and m and len(under) >= len(title.strip()):
            over = i > 0 and lines[i - 1].rstrip() == under
            style = (under[0], over)
            if style not in styles:
                styles.append(style)
            start = offsets[i - 1] if over else offsets[i]
            marks.append((start, offsets[i + 2], styles.index(style) + 1, title.strip()))
            i += 2
            continue
        i += 1
    return marks


def _units(text: str, section: Section, limit: int, count: CountTokens) -> list[_Unit]:
    """Sentences of a section, with over-long ones cut into runs of words."""
    spans = [
        s
        for para in paragraph_spans(text, section.start, section.end)
        for s in sentence_spans(text, para[0], para[1], capital_next=True)
    ]
    counts = count([text[a:b] for a, b in spans]) if spans else []
    units: list[_Unit] = []
    for (a, b), n in zip(spans, counts):
        if n <= limit:
            units.append(_Unit(a, b, n))
        else:
            units.extend(_split_long(text, a, b, limit, count))
    return units


def _split_long(text: str, start: int, end: int, limit: int, count: CountTokens) -> list[_Unit]:
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
    words = [(start + a, start + b) for a, b in words]
    counts = count([text[a:b] for a, b in words])
    units: list[_Unit] = []
    run_start, run_tokens, run_end = None, 0, start
    for (a, b), n in zip(words, counts):
        if n > limit:  # one "word" longer than the limit (a URL, base64): cut by characters
            if run_start is not None:
                units.append(_Unit(run_start, run_end, run_tokens))
                run_start, run_tokens = None, 0
            units.extend(_split_chars(text, a, b, limit, count))
            continue
        if run_start is not None and run_tokens + n > limit:
            units.append(_Unit(run_start, run_end, run_tokens))
            run_start, run_tokens = None, 0
        if run_start is None:
            run_start = a
        run_tokens += n
        run_end = b
    if run_start is not None:
        units.append(_Unit(run_start, run_end, run_tokens))
    return units


def _split_chars(text: str, start: int, end: int, limit: int, count: CountTokens) -> list[_Unit]:
    n = count([text[start:end]])[0]
    if n <= limit or end - start <= 1:
        return [_Unit(start, end, n)]
    mid = (start + end) // 2
    return _split_chars(text, start, mid, limit, count) + _split_chars(text, mid, end, limit, count)


def chunk_page(page: Page, count: CountTokens, max_tokens: int, overlap: int) -> list[Chunk]:
    """Cut one page into chunks of at most `max_tokens` tokens (heading path included).

    Args:
        page: the page to cut.
        count: returns the token count of each text, without special tokens.
        max_tokens: the hard limit per chunk, heading path included.
        overlap: tokens of trailing sentences repeated at the start of the next chunk.
    """
    chunks: list[Chunk] = []
    text = page.text
    for section in sections(text, page.kind):
        heading = section.heading
        heading_tokens = count([heading + "\n"])[0] if heading else 0
        if heading_tokens > max_tokens // 2:  # a runaway "heading" would crowd out the text
            heading, heading_tokens = "", 0
        budget = max_tokens - heading_tokens
        units = _units(text, section, budget, count)
        for group in _pack(units, budget, overlap):
            a, b = group[0].start, group[-1].end
            chunks.append(
                Chunk(
                    source=page.source,
                    page=page.page,
                    heading=heading,
                    start=page.offset + a,
                    end=page.offset + b,
                    text=text[a:b],
                    tokens=heading_tokens + sum(u.tokens for u in group),
                    location=page.location,
                    ocr=page.ocr,
                )
            )
    return _enforce_limit(chunks, count, max_tokens)


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[list[_Unit]]:
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # units in `current` that are not overlap from the previous group
    for unit in units:
        if current and size + unit.tokens > budget:
            if fresh:
                groups.append(current)
            carried: list[_Unit] = []
            carried_size = 0
            for prev in reversed(current):
                if carried_size + prev.tokens > overlap or len(carried) + 1 >= len(current):
                    break
                carried.insert(0, prev)
                carried_size += prev.tokens
            while carried and carried_size + unit.tokens > budget:
                carried_size -= carried.pop(0).tokens
            current, size, fresh = carried, carried_size, 0
        current.append(unit)
        size += unit.tokens
        fresh += 1
    if current and fresh:
        groups.append(current)
    return groups


def _enforce_limit(chunks: list[Chunk], count: CountTokens, max_tokens: int) -> list[Chunk]:
    """Recount each chunk as embedded (joining can merge word pieces) and record the
    true count; the rare chunk over the limit by a token or two is trimmed by words."""
    if not chunks:
        return chunks
    real = count([c.embed_text() for c in chunks])
    out = []
    for chunk, n in zip(chunks, real):
        while n > max_tokens:
            cut = chunk.text.rstrip().rfind(" ")
            if cut <= 0:
                break
            text = chunk.text[:cut].rstrip()
            chunk = replace(chunk, end=chunk.start + len(text), text=text)
            n = count([chunk.embed_text()])[0]
        out.append(replace(chunk, tokens=n))
    return out


def chunk_pages(pages: Sequence[Page], count: CountTokens, max_tokens: int, overlap: int) -> list[Chunk]:
    return [c for p in pages for c in chunk_page(p, count, max_tokens, overlap)]
