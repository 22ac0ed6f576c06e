"""Pages for the content streams of a damaged PDF that no surviving page object points
to (rag/loaders/pdf.py rebuild_pdf). Many writers put the page objects, or the object
streams that hold them, at the end of the file, after the page contents; a file cut
short keeps the contents and loses every page object. Each such content stream (a
stream whose inflated bytes draw text: `BT` ... `Tj`/`TJ` ... `ET`) becomes a page of
its own, in file order, with a standard font standing in for each font it names (the
real font objects are usually lost with the page objects). Text in simple fonts reads
back; text in fonts with their own glyph codes does not decode, and the loader reports
such a page as unreadable rather than store it.
"""

from __future__ import annotations

import re
import zlib

# The dictionary part may not run into another object ("endobj", "obj"), or a page
# object would be taken for the stream that follows it.
_STREAM_OBJ = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\s*<<((?:(?!endobj|\sobj\b).){0,600}?)>>\s*stream\r?\n",
                         re.S)
_TEXT_OPS = re.compile(rb"\bBT\b.{0,4000}?(?:\bTj|\bTJ|')", re.S)
_FONT_USE = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s+[-\d.]+\s+Tf\b")
_CONTENTS = re.compile(rb"/Contents\s*(?:(\d+)\s+\d+\s+R|\[([^\]]*)\])")
_REF = re.compile(rb"(\d+)\s+\d+\s+R")
MAX_STREAMS = 20_000  # stream objects looked at in one file
MAX_INFLATED = 16 << 20  # bytes one content stream may inflate to


def referenced_contents(page_bodies: list[bytes]) -> set[int]:
    """The object numbers the given page objects name as their /Contents."""
    out: set[int] = set()
    for body in page_bodies:
        for m in _CONTENTS.finditer(body):
            out.update(int(n) for n in ([m.group(1)] if m.group(1) else _REF.findall(m.group(2))))
    return out


def orphan_pages(data: bytes, known: set[int], first_number: int) -> tuple[list[tuple[int, bytes]], list[int]]:
    """New objects (number, body) for the text content streams not in `known`: a font
    object for each font name used, and a page object for each stream. Returns the
    objects and the page numbers among them, in file order."""
    objects: list[tuple[int, bytes]] = []
    pages: list[int] = []
    fonts: dict[bytes, int] = {}
    number = first_number
    for i, m in enumerate(_STREAM_OBJ.finditer(data)):
        if i >= MAX_STREAMS:
            break
        if int(m.group(1)) in known:
            continue
        content = _content(data, m)
        if content is None or not _TEXT_OPS.search(content):
            continue
        for name in dict.fromkeys(_FONT_USE.findall(content)):
            if name not in fonts:
                fonts[name] = number
                objects.append((number, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                                        b"/Encoding /WinAnsiEncoding >>"))
                number += 1
        used = b" ".join(b"/" + n + b" " + str(fonts[n]).encode() + b" 0 R"
                         for n in dict.fromkeys(_FONT_USE.findall(content)))
        objects.append((number, b"<< /Type /Page /MediaBox [0 0 612 792] /Contents " + m.group(1) + b" "
                        + m.group(2) + b" R /Resources << /Font << " + used + b" >> >> >>"))
        pages.append(number)
        number += 1
    return objects, pages


def _content(data: bytes, m: re.Match[bytes]) -> bytes | None:
    """The stream's bytes, inflated if it is Flate-compressed; None for image, font and
    other streams that are not page content."""
    head = m.group(3)
    if re.search(rb"/(?:Subtype|Type)\s*/(?:Image|Form|XObject|XRef|ObjStm|Metadata|FontFile|Font)\b", head) or \
            re.search(rb"/Length[123]\b|/N\s+\d", head):
        return None
    end = data.find(b"endstream", m.end())
    raw = data[m.end() : end if end > 0 else len(data)]
    if b"/FlateDecode" in head:
        try:
            return zlib.decompressobj().decompress(raw, MAX_INFLATED)
        except zlib.error:
            return None
    return None if b"/Filter" in head else raw
