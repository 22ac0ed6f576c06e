"""Tables as text the chunker keeps together, for every format that has them.

The chunker (rag/chunking.py) cuts at headings, blank lines and list items, then at
sentences. A Markdown table would be cut between rows, leaving a chunk of bare cells
with no column names, so each row becomes its own paragraph of `Header: value` pairs:

    Year: 2006; Budget: 1.2 M; Owner: Ana

A chunk holding a cell then holds its column header and the row's first cell. A row
too long for one chunk is written as several paragraphs, each starting again with the
row's first pair. The header is the first row with two or more different values; rows
before it with a single value (a title above the table, a merged caption) are plain
paragraphs, and so is every row of a one-column table.

`sheet_pages` turns a stream of rows into pages of bounded size (spreadsheets, CSV),
stopping with a note at MAX_ROWS rows or MAX_CHARS characters per file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from ..types import Page

ROW_CHARS = 400  # a row longer than this is split into several paragraphs
MAX_COLUMNS = 512  # cells past this in a row are left out
MAX_ROWS = 1_000_000  # rows with text read from one file (all its sheets)
MAX_CHARS = 100_000_000  # characters of rendered rows from one file
SEGMENT_CHARS = 1 << 20  # a sheet's text comes in pages (segments) of about this size

_HEADING_LIKE = re.compile(r"[ \t]*#{1,6}[ \t]")


def cell(text: object) -> str:
    """A cell's text on one line: the chunker must not see its line breaks as paragraphs."""
    return " ".join(str(text).replace("\x00", "").split()) if text is not None else ""


def safe_line(text: str) -> str:
    """Text that starts like a Markdown heading ("# 3 items") is escaped, not a heading."""
    return "\\" + text if _HEADING_LIKE.match(text) else text


class TableText:
    """Renders rows one at a time (a spreadsheet's rows are never all in memory)."""

    def __init__(self) -> None:
        self.header: list[str] | None = None

    def row(self, cells: Sequence[object]) -> list[str]:
        """The paragraphs for one row (none for an empty row)."""
        values = [cell(c) for c in cells[:MAX_COLUMNS]]
        filled = [v for v in values if v]
        if not filled:
            return []
        if self.header is None:
            if len(set(filled)) < 2:
                return [safe_line(filled[0])]
            self.header = values
            return [safe_line(" | ".join(filled))]
        return _row_paragraphs(self.header, values)


def _row_paragraphs(header: list[str], values: list[str]) -> list[str]:
    pairs = []
    for i, value in enumerate(values):
        if not value:
            continue
        name = header[i] if i < len(header) else ""
        pairs.append(f"{name}: {value}" if name and name != value else value)
    lead, paragraphs, current = pairs[0], [], pairs[0]
    for pair in pairs[1:]:
        if len(current) + len(pair) + 2 > ROW_CHARS and current != lead:
            paragraphs.append(current)
            current = lead
        current += "; " + pair
    paragraphs.append(current)
    return [safe_line(p) for p in paragraphs]


def table_paragraphs(rows: Iterable[Sequence[object]]) -> list[str]:
    """All paragraphs of one small table (a document's, not a spreadsheet's)."""
    table = TableText()
    return [p for r in rows for p in table.row(r)]


@dataclass
class Budget:
    """What one file's sheets have read so far, against MAX_ROWS and MAX_CHARS."""

    rows: int = 0  # read so far
    chars: int = 0
    spent: bool = False


def sheet_pages(
    source: str, page: int | None, location: str, title: str, rows: Iterable[Sequence[object]],
    budget: Budget, notes: list[str],
) -> Iterator[Page]:
    """A sheet's rows as pages of about SEGMENT_CHARS, each headed by `title` (so every
    chunk carries the sheet's name), with offsets counting on from segment to segment.
    An error from `rows` (a damaged part) comes after the pages of the rows before it."""
    if budget.spent:  # an earlier sheet used up the file's allowance (and said so)
        return
    heading = f"# {cell(title)}\n\n" if cell(title) else ""
    table = TableText()
    parts: list[str] = []
    size = offset = 0
    damage: Exception | None = None
    iterator = iter(rows)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            break
        except Exception as exc:  # a damaged part: keep the rows read so far, then re-raise
            damage = exc
            break
        if budget.rows >= MAX_ROWS or budget.chars >= MAX_CHARS:
            budget.spent = True
            notes.append(f"{location or 'file'}: stopped after {budget.rows:,} rows ({budget.chars:,} characters); "
                         "the rest of the file is not indexed")
            break
        paragraphs = table.row(row)
        budget.rows += bool(paragraphs)  # empty rows cost nothing: a sheet may skip to row 1,048,576
        for paragraph in paragraphs:
            parts.append(paragraph)
            size += len(paragraph) + 2
            budget.chars += len(paragraph) + 2
        if size >= SEGMENT_CHARS:
            text = heading + "\n\n".join(parts) + "\n"
            yield Page(source=source, page=page, text=text, kind="markdown", offset=offset, location=location)
            offset += len(text)
            parts, size = [], 0
    if parts:
        text = heading + "\n\n".join(parts) + "\n"
        yield Page(source=source, page=page, text=text, kind="markdown", offset=offset, location=location)
    if damage is not None:
        raise damage
