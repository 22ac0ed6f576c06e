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


_RESOURCES_REF = re.compile(rb"/Resources\s+(\d+)\s+\d+\s+R")
STAND_IN_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


class StandIns:
    """The objects a rebuild appends: a stand-in font per font name, and pages."""

    def __init__(self, first_number: int) -> None:
        self.next = first_number
        self.objects: list[tuple[int, bytes]] = []
        self.fonts: dict[bytes, int] = {}

    def add(self, body: bytes, number: int | None = None) -> int:
        if number is None:
            number, self.next = self.next, self.next + 1
        self.objects.append((number, body))
        return number

    def resources(self, content: bytes) -> bytes:
        names = list(dict.fromkeys(_FONT_USE.findall(content)))
        for name in names:
            if name not in self.fonts:
                self.fonts[name] = self.add(STAND_IN_FONT)
        used = b" ".join(b"/" + n + b" " + str(self.fonts[n]).encode() + b" 0 R" for n in names)
        return b"<< /Font << " + used + b" >> >>"


def stand_in_pages(data: bytes, pages: dict[int, bytes], present: set[int], first_number: int
                   ) -> tuple[list[tuple[int, bytes]], list[int]]:
    """What to append so the page text can be read: a page whose /Resources object was
    lost is given again (the later definition wins) with stand-in fonts, and each text
    content stream no page names becomes a new page. Returns the objects (number, body)
    and the new pages' numbers, in file order."""
    streams = {int(m.group(1)): m for i, m in enumerate(_STREAM_OBJ.finditer(data)) if i < MAX_STREAMS}
    out = StandIns(first_number)
    named: set[int] = set()
    for number, body in pages.items():
        contents = _contents_of(body)
        named.update(contents)
        lost = _RESOURCES_REF.search(body)
        if lost and int(lost.group(1)) not in present:
            text = b"\n".join(c for c in (_content(data, streams[n]) for n in contents if n in streams) if c)
            out.add(body[: lost.start()] + b"/Resources " + out.resources(text) + body[lost.end() :], number)
    orphans = []
    for number, m in streams.items():
        content = None if number in named else _content(data, m)
        if content is not None and _TEXT_OPS.search(content):
            orphans.append(out.add(b"<< /Type /Page /MediaBox [0 0 612 792] /Contents " + m.group(1) + b" "
                                   + m.group(2) + b" R /Resources " + out.resources(content) + b" >>"))
    return out.objects, orphans


def _contents_of(body: bytes) -> list[int]:
    out: list[int] = []
    for m in _CONTENTS.finditer(body):
        out += [int(n) for n in ([m.group(1)] if m.group(1) else _REF.findall(m.group(2)))]
    return out


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
