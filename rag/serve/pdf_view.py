"""A PDF page as the web page shows it: rendered by PDFium, with the boxes of a quote's
characters in the image's pixels.

The stored page text (which quotes index into) is pypdf's text, cleaned (ligatures
spelt out, running headers dropped, words broken at line ends joined: rag/loaders/
pdf_text.py), while PDFium numbers its own characters: UTF-16 units (a character
outside the BMP takes two indices), its own spaces and line ends, and no index for a
glyph without a Unicode value. So offsets are not shared; they are matched through the
characters themselves. Both texts are reduced to their visible characters (NFKC,
case-folded, no white space, no hyphens), the quote's run is looked up in PDFium's, and
each of its characters brings back the PDFium index it came from. Where the quote
occurs more than once the occurrence nearest its place in the stored text wins; where
it does not occur whole (a reading order that differs between the two), the longest
shared runs are used (difflib, in any order), and `matched` says how much of the quote
they cover.

Pixels come from PDFium's own page-to-device transform with the render's size and
rotation, so page boxes inherited from the page tree and /Rotate are handled as the
renderer handles them.
"""

from __future__ import annotations

import ctypes
import math
import difflib
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RagError
from ..loaders.pdfium_lock import PDFIUM

MIN_RUN = 4  # characters: shorter shared runs are as likely chance as the quote
_SKIP = frozenset("-\u00ad\u2010\u2011")


@dataclass(frozen=True)
class Visible:
    """A text's visible characters, normalised, and where each came from."""

    text: str
    origin: tuple[int, ...]  # per character of `text`: the index it came from


def visible(chars: list[tuple[int, str]]) -> Visible:
    """(index, character) pairs -> their visible characters with the index of each."""
    out: list[str] = []
    origin: list[int] = []
    for index, ch in chars:
        if ch.isspace() or ch in _SKIP:
            continue
        for piece in unicodedata.normalize("NFKC", ch).casefold():
            if not piece.isspace() and piece not in _SKIP:
                out.append(piece)
                origin.append(index)
    return Visible("".join(out), tuple(origin))


def pdfium_chars(textpage: Any) -> list[tuple[int, str]]:
    """Each PDFium character index with its character; a surrogate pair gives both of its
    indices the one character, and glyphs without a Unicode value are left out."""
    import pypdfium2.raw as raw

    count = textpage.count_chars()
    out: list[tuple[int, str]] = []
    i = 0
    while i < count:
        code = raw.FPDFText_GetUnicode(textpage.raw, i)
        if 0xD800 <= code < 0xDC00 and i + 1 < count:
            low = raw.FPDFText_GetUnicode(textpage.raw, i + 1)
            if 0xDC00 <= low < 0xE000:
                ch = chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
                out += [(i, ch), (i + 1, ch)]
                i += 2
                continue
        if code and not 0xD800 <= code < 0xE000 and code not in (0xFFFE, 0xFFFF):
            out.append((i, chr(code)))
        i += 1
    return out


def match(stored: str, start: int, end: int, page: Visible) -> tuple[list[int], float]:
    """The PDFium indices of the stored text's [start, end) characters, and the share of
    the quote's visible characters found."""
    quote = visible(list(enumerate(stored[start:end])))
    if not quote.text:
        return [], 0.0
    before = len(visible(list(enumerate(stored[:start]))).text)
    total = max(1, len(visible(list(enumerate(stored))).text))
    found = _occurrences(page.text, quote.text)
    if found:
        # Where the quote sits in the stored text, as a share of it, picks the occurrence.
        spot = before / total * len(page.text)
        at = min(found, key=lambda f: abs(f - spot))
        return sorted(set(page.origin[at:at + len(quote.text)])), 1.0
    runs = _shared_runs(quote.text, page.text)
    indices = {page.origin[j] for b in runs for j in range(b.b, b.b + b.size)}
    return sorted(indices), sum(b.size for b in runs) / len(quote.text)


def _shared_runs(quote: str, page: str) -> list[Any]:
    """The longest run the quote shares with the page, then the longest in each part of
    the quote left on either side, and so on (MIN_RUN characters at least): unlike
    difflib's matching blocks, the runs may come in another order on the page."""
    matcher = difflib.SequenceMatcher(None, quote, page, autojunk=False)
    pending, found = [(0, len(quote))], []
    while pending:
        lo, hi = pending.pop()
        if hi - lo < MIN_RUN:
            continue
        run = matcher.find_longest_match(lo, hi, 0, len(page))
        if run.size < MIN_RUN:
            continue
        found.append(run)
        pending += [(lo, run.a), (run.a + run.size, hi)]
    return found


def _occurrences(text: str, part: str) -> list[int]:
    out, at = [], text.find(part)
    while at >= 0:
        out.append(at)
        at = text.find(part, at + 1)
    return out


def open_page(path: Path, number: int) -> tuple[Any, Any]:
    """(document, page) of a PDF's page `number` (1-based); close the document after.

    Raises:
        RagError: the file cannot be opened by PDFium or has no such page.
    """
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise RagError(f"{path}: PDFium cannot open it ({exc})") from None
    if not 1 <= number <= len(document):
        document.close()
        raise RagError(f"{path} has {len(document)} page(s); there is no page {number}")
    return document, document[number - 1]


def render_png(path: Path, number: int, scale: float) -> bytes:
    """The page as a PNG, `scale` pixels per point."""
    with PDFIUM:  # PDFium is not thread-safe (rag/loaders/pdfium_lock.py)
        return _render_png(path, number, scale)


def _render_png(path: Path, number: int, scale: float) -> bytes:
    document, page = open_page(path, number)
    try:
        image = page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()
    finally:
        page.close()
        document.close()


def quote_boxes(path: Path, number: int, stored: str, spans: list[tuple[int, int]], scale: float) -> dict[str, Any]:
    """The image's size and, for each (start, end) span of the stored page text, the
    pixel boxes of its characters as rendered at `scale` (one box per line run)."""
    with PDFIUM:
        return _quote_boxes(path, number, stored, spans, scale)


def _quote_boxes(path: Path, number: int, stored: str, spans: list[tuple[int, int]], scale: float) -> dict[str, Any]:
    document, page = open_page(path, number)
    try:
        textpage = page.get_textpage()
        try:
            width, height = (math.ceil(x * scale) for x in page.get_size())  # as PdfPage.render sizes it
            chars = visible(pdfium_chars(textpage))
            out = []
            for start, end in spans:
                indices, share = match(stored, start, end, chars)
                boxes = [b for i in indices if (b := _device_box(page, textpage, i, width, height)) is not None]
                out.append({"start": start, "end": end, "boxes": merge_boxes(boxes), "matched": round(share, 3)})
            return {"width": width, "height": height, "scale": scale, "spans": out}
        finally:
            textpage.close()
    finally:
        page.close()
        document.close()


def _device_box(page: Any, textpage: Any, index: int, width: int, height: int) -> list[float] | None:
    import pypdfium2.raw as raw

    left, bottom, right, top = textpage.get_charbox(index)
    if right - left <= 0 or top - bottom <= 0:
        return None  # a generated space or line end: nothing drawn
    xs, ys = [], []
    for px, py in ((left, bottom), (right, top)):
        dx, dy = ctypes.c_int(), ctypes.c_int()
        raw.FPDF_PageToDevice(page.raw, 0, 0, width, height, 0, px, py, ctypes.byref(dx), ctypes.byref(dy))
        xs.append(dx.value)
        ys.append(dy.value)
    return [min(xs), min(ys), max(xs), max(ys)]


def merge_boxes(boxes: list[list[float]]) -> list[list[float]]:
    """Characters' boxes, in reading order, joined into one box per run along a line."""
    out: list[list[float]] = []
    for box in boxes:
        if out:
            last = out[-1]
            tall = min(last[3] - last[1], box[3] - box[1])
            overlap = min(last[3], box[3]) - max(last[1], box[1])
            if overlap > 0.5 * tall and last[0] - 2 <= box[0] <= last[2] + 2 * max(tall, 1):
                out[-1] = [last[0], min(last[1], box[1]), max(last[2], box[2]), max(last[3], box[3])]
                continue
        out.append(list(box))
    return out
