"""Spreadsheets: Excel (.xlsx/.xlsm, openpyxl), OpenDocument (.ods) and delimited text
(.csv/.tsv), all streamed row by row so memory stays bounded at any size.

Each sheet is a page (`page` = its 1-based position, location "sheet <name>"), its
rows rendered under their header row as `Header: value` paragraphs (tables.py), cut
into segments of about a megabyte; a file stops at tables.MAX_ROWS rows or MAX_CHARS
characters with a note. A CSV file is one sheet without a page number.

Values are shown as the sheet shows them where the format allows: .ods stores the
displayed text beside each value; for Excel, formulas give the value cached at the
last save (data_only, nothing is recalculated) and numbers follow their format's
decimals, thousands separators and percent sign, dates in ISO form. An .xlsm is read
as data only: macros are never run.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import LoaderError
from ..types import Page
from .opendoc import q, row_cells
from .tables import MAX_COLUMNS, Budget, sheet_pages
from .text import read_error_reason
from .zipped import check_xml_parts, expect_odf, expect_ooxml, open_package, short

FIELD_CHARS = 16 << 20  # one CSV field; a longer one ends the file with a note
KINDS = {".xlsx": "markdown", ".xlsm": "markdown", ".csv": "markdown", ".tsv": "markdown", ".ods": "markdown"}


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> Iterator[Page]:
    """The pages of a spreadsheet, yielded as they are read."""
    suffix = path.suffix.lower()
    reader = {".csv": _delimited, ".tsv": _delimited, ".ods": _ods}.get(suffix, _xlsx)
    found = False
    for page in reader(path, source, notes, Budget()):
        found = True
        yield page
    if not found:
        raise LoaderError(source, "empty file (no text)")


# --- Excel ---------------------------------------------------------------------------

def _xlsx(path: Path, source: str, notes: list[str], budget: Budget) -> Iterator[Page]:
    import openpyxl

    with open_package(path, source, "Excel workbook", streamed=[r"xl/worksheets/[^/]+\.xml"]) as zf:
        expect_ooxml(zf, source, "xlsx")
        check_xml_parts(zf, source)
    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types on damaged parts
        raise LoaderError(source, f"damaged Excel workbook ({short(exc)})") from None
    try:
        for index, sheet in enumerate(book.worksheets, 1):
            # The sheet's declared size can be anything ("A1:XFD1048576"): openpyxl would pad
            # every row to it, so rows come as stored, cut at MAX_COLUMNS.
            sheet.reset_dimensions()
            rows = ([_display(c) for c in row[:MAX_COLUMNS]] for row in sheet.iter_rows())
            yield from _guarded(sheet_pages(source, index, f"sheet {sheet.title}", sheet.title, rows, budget, notes),
                                sheet.title, notes)
    finally:
        book.close()


def _guarded(pages: Iterator[Page], name: str, notes: list[str]) -> Iterator[Page]:
    """A sheet's pages; a damaged sheet ends with a note and the next one is read."""
    try:
        yield from pages
    except LoaderError:
        raise
    except Exception as exc:
        notes.append(f"sheet {name}: damaged, read up to the damage ({short(exc)})")


def _display(c: Any) -> str:
    value = c.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        try:
            return format_number(value, getattr(c, "number_format", "General") or "General")
        except (ValueError, OverflowError):
            return str(value)
    return str(value)


_DECIMALS = re.compile(r"\.([0#?]+)")
_CURRENCY = re.compile(r"[$€£¥]")


def format_number(value: float, number_format: str) -> str:
    """A number as Excel's format would roughly show it: decimals, thousands
    separators, percent and a currency symbol; anything subtler shows the plain value."""
    fmt = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.|_.', "", number_format.split(";")[0])
    if fmt.strip().lower() in ("general", "@", ""):
        return _plain(value)
    decimals = len(m.group(1)) if (m := _DECIMALS.search(fmt)) else 0
    if "%" in fmt:
        return f"{value * 100:.{decimals}f}%"
    if not re.search(r"[0#?]", fmt):
        return _plain(value)
    grouped = "," in fmt.split(".")[0]
    text = f"{value:{',' if grouped else ''}.{decimals}f}"
    symbol = _CURRENCY.search(fmt)
    return symbol.group(0) + text if symbol else text


def _plain(value: float) -> str:
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:.10g}"


# --- CSV and TSV ---------------------------------------------------------------------

def _delimited(path: Path, source: str, notes: list[str], budget: Budget) -> Iterator[Page]:
    import csv

    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None
    with raw:
        head = raw.read(64 << 10)
        encoding = _sniff_encoding(head, source)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(head.decode(encoding, errors="replace"))
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        rows = csv.reader(text, delimiter=delimiter)
        # csv's field limit (128 KB) is process-wide; a long text cell is legitimate, so it
        # is raised while this file is read and put back after.
        limit = csv.field_size_limit(FIELD_CHARS)
        try:
            yield from sheet_pages(source, None, "", "", rows, budget, notes)
        except csv.Error as exc:  # a field past the limit, a NUL byte
            notes.append(f"malformed CSV, read up to line {rows.line_num:,} ({short(exc)})")
        except OSError as exc:
            raise LoaderError(source, read_error_reason(exc)) from None
        finally:
            csv.field_size_limit(limit)


def _sniff_encoding(head: bytes, source: str) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head[:8192]:
        raise LoaderError(source, "binary data (NUL bytes) in a text file")
    try:
        head.decode("utf-8", errors="strict") if len(head) < (64 << 10) else _decode_prefix(head)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _decode_prefix(head: bytes) -> str:
    import codecs

    return codecs.getincrementaldecoder("utf-8")().decode(head)  # a cut character at the end is fine


def _sniff_delimiter(sample: str) -> str:
    import csv

    try:
        return csv.Sniffer().sniff(sample[:16384], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


# --- OpenDocument spreadsheet --------------------------------------------------------

def _ods(path: Path, source: str, notes: list[str], budget: Budget) -> Iterator[Page]:
    import defusedxml.ElementTree as SafeET

    what = "an OpenDocument spreadsheet"
    with open_package(path, source, what, streamed=["content.xml"]) as zf:
        expect_odf(zf, source, "application/vnd.oasis.opendocument.spreadsheet", what)
        check_xml_parts(zf, source)
        try:
            events = SafeET.iterparse(zf.open("content.xml"), events=("start", "end"), forbid_dtd=True)
            grouped = itertools.groupby(_ods_rows(events), key=lambda r: r[:2])
            for (index, name), rows in grouped:
                cells = (r[2] for r in rows)
                yield from sheet_pages(source, index, f"sheet {name}", name, cells, budget, notes)
        except LoaderError:
            raise
        except KeyError:
            raise LoaderError(source, "damaged OpenDocument spreadsheet: no content.xml") from None
        except Exception as exc:  # expat, zlib, zipfile: stop where the damage is
            notes.append(f"damaged OpenDocument spreadsheet, read up to the damage ({short(exc)})")


def _ods_rows(events: Iterable[tuple[str, Any]]) -> Iterator[tuple[int, str, list[str]]]:
    """(sheet index, sheet name, cells) per row, each row dropped from the tree once
    read so the tree never holds more than one."""
    stack: list[Any] = []
    index, name = 0, ""
    table, row = q("table:table"), q("table:table-row")
    for event, element in events:
        if event == "start":
            stack.append(element)
            if element.tag == table and len(stack) > 1 and stack[-2].tag == q("office:spreadsheet"):
                index, name = index + 1, element.get(q("table:name"), "") or f"Sheet{index + 1}"
            continue
        stack.pop()
        if element.tag == row and len(stack) and _in_sheet(stack, table):
            cells = row_cells(element)
            repeat = int(element.get(q("table:number-rows-repeated"), "1") or 1)
            for _ in range(min(repeat, 64) if any(cells) else 1):
                yield index, name, cells
            stack[-1].remove(element)
        elif element.tag == table and stack:
            stack[-1].remove(element)


def _in_sheet(stack: list[Any], table: str) -> bool:
    """A row of a sheet, not of a table nested in a cell's text."""
    for element in reversed(stack):
        if element.tag == table:
            return True
        if element.tag == q("table:table-cell"):
            return False
    return False
