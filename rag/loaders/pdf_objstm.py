"""The objects packed in a PDF's object streams, for rebuilding a damaged PDF
(rag/loaders/pdf.py): since PDF 1.5 writers pack most objects (the catalog, the page
tree, the pages themselves) into compressed /ObjStm streams, indexed only by a
cross-reference stream at the end of the file. A file truncated before that index
keeps the streams, and so its pages, but nothing says where they are; this finds every
object stream in the bytes, inflates as much of it as is there (a stream cut off
part-way still gives the objects before the cut) and returns the objects it holds.
"""

from __future__ import annotations

import re
import zlib

_OBJSTM = re.compile(rb"(?<![0-9])(\d{1,10})\s+\d{1,5}\s+obj\s*<<(?:(?!>>\s*stream|endobj|\sobj\b).){0,400}?"
                     rb"/Type\s*/ObjStm", re.S)
_STREAM = re.compile(rb">>\s*stream\r?\n")
MAX_INFLATED = 64 << 20  # bytes one object stream may inflate to (a bomb stops here)


def unpack_object_streams(data: bytes) -> dict[int, bytes]:
    """Object number -> its body, for every object in the object streams found."""
    found: dict[int, bytes] = {}
    for m in _OBJSTM.finditer(data):
        head_end = _STREAM.search(data, m.start(), m.start() + 2000)
        if head_end is None:
            continue
        header = data[m.start() : head_end.start()]
        n, first = _int(header, rb"/N\s+(\d+)"), _int(header, rb"/First\s+(\d+)")
        if not n or first is None:
            continue
        end = data.find(b"endstream", head_end.end())
        raw = data[head_end.end() : end if end > 0 else len(data)]
        found.update(_objects(_inflate(raw) if b"/FlateDecode" in header else raw, n, first))
    return found


def _int(header: bytes, pattern: bytes) -> int | None:
    m = re.search(pattern, header)
    return int(m.group(1)) if m else None


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompressobj().decompress(raw, MAX_INFLATED)  # as much as the bytes give
    except zlib.error:
        return b""


def _objects(stream: bytes, n: int, first: int) -> dict[int, bytes]:
    numbers = stream[:first].split()
    pairs = [(int(numbers[i]), int(numbers[i + 1])) for i in range(0, min(len(numbers), 2 * n) - 1, 2)
             if numbers[i].isdigit() and numbers[i + 1].isdigit()]
    out: dict[int, bytes] = {}
    for i, (number, offset) in enumerate(pairs):
        start = first + offset
        end = first + pairs[i + 1][1] if i + 1 < len(pairs) else len(stream)
        if i + 1 == len(pairs) and len(stream) < first:
            break
        body = stream[start:end].strip()
        if body and (i + 1 < len(pairs) and end <= len(stream)):
            out[number] = body
        elif body and i + 1 == len(pairs) and body.endswith((b">>", b"]", b")")):
            out[number] = body  # the last object: kept only if it looks complete
    return out
