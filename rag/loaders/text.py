"""Plain text, Markdown and reStructuredText files, and the byte-level reading every
loader shares: file errors as reasons, encoding detection, and mojibake repair.

A file up to STREAM_BYTES is read whole into one page. A larger one is read in segments
of about SEGMENT_BYTES, cut at paragraph breaks, each a page with its character offset
in the file, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ..errors import LoaderError
from ..types import Page

log = logging.getLogger(__name__)

KINDS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".rst": "rst"}
STREAM_BYTES = 16 << 20  # text files above this are read in segments
SEGMENT_BYTES = 1 << 20
REPAIRED_NOTE = "mis-decoded text (mojibake) repaired"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Sequences that UTF-8 text takes on when it is decoded as cp1252 or latin-1: a lead
# byte's character followed by a continuation byte's. Cheap to look for; ftfy, which
# is slower, only runs where one is found.
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u20ac\u2122]")


# Files that are plain text whatever follows their name (LICENSE, COPYING.LIB, README.Debian,
# NOTICE, AUTHORS, CHANGELOG, ...): read even when they have no suffix, as long as they are not binary.
TEXT_NAMES = ("license", "licence", "copying", "readme", "notice", "authors", "changelog", "changes", "news",
              "contributors", "thanks", "todo", "install", "copyright", "history", "metadata")
SNIFF_BYTES = 8192


def is_text_name(name: str) -> bool:
    stem = name.lower().split(".", 1)[0].replace("_", "-").split("-", 1)[0]
    return stem in TEXT_NAMES


def has_real_suffix(name: str) -> bool:
    """Whether a file name ends in a file type: ".txt", not "Apache-2.0"'s ".0" or no dot."""
    suffix = Path(name).suffix
    return bool(suffix) and not suffix[1:].replace("_", "").isdigit()


def sniffs_as_text(path: Path) -> bool:
    """Whether a file's first bytes are text: no NUL byte, and UTF-8 (or, failing that,
    nearly all printable in cp1252). An empty or unreadable file is not."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return False
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            text = head.decode("cp1252", errors="replace")
            printable = sum(c.isprintable() or c in "\n\r\t\f" for c in text)
            return printable >= 0.97 * len(text)
    return True


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> Iterator[Page]:
    """The pages of a text file: one, or a segment per page past STREAM_BYTES."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # reading it below gives the reason
    if size > STREAM_BYTES:
        yield from _stream_text(path, source, kind, notes)
        return
    yield whole_page(source, decode_text(read_bytes(path, source), source), kind, notes, clean=True)


def whole_page(source: str, text: str, kind: str, notes: list[str], clean: bool = False) -> Page:
    """A whole file's decoded text as its one page, repaired (and with `clean`, its markup
    and layout cleaned: rag/loaders/cleanup.py); an empty file is an error."""
    text = repair(text, notes)
    if clean:
        from .cleanup import clean_text

        text = clean_text(text, kind)
    if not text.strip():
        raise LoaderError(source, "empty file (no text)")
    return Page(source=source, page=None, text=text, kind=kind)


def repair(text: str, notes: list[str]) -> str:
    """Undo mojibake (UTF-8 read as cp1252) and say so once in `notes`."""
    if not _MOJIBAKE.search(text):
        return text
    import ftfy

    fixed = ftfy.fix_encoding(text)
    if fixed != text and REPAIRED_NOTE not in notes:
        notes.append(REPAIRED_NOTE)
    return fixed


def read_error_reason(exc: OSError) -> str:
    """The reason recorded for a file that could not be read."""
    if isinstance(exc, FileNotFoundError):
        return "file vanished before it could be read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"cannot read: {exc.strerror or exc}"


def read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None


def decode_text(data: bytes, source: str = "<bytes>") -> str:
    """Decode file bytes: a BOM wins, then strict UTF-8, then a lenient fallback.

    The fallback only runs when strict UTF-8 fails, so a good UTF-8 file is never
    re-read as cp1252 (which would turn "café" into "cafÃ©"). A file that holds valid
    multi-byte UTF-8 but also stray bytes keeps UTF-8 with U+FFFD for those bytes; a
    file with no valid multi-byte sequence at all is read as cp1252.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        raise LoaderError(source, "binary data (NUL bytes) in a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    if any(ord(c) > 127 and c != "\ufffd" for c in lenient):
        # Real multi-byte UTF-8 elsewhere in the file: it is UTF-8 with a few stray bytes.
        log.info("%s: some bytes are not UTF-8 and were replaced", source)
        return lenient
    log.info("%s: not UTF-8, read as cp1252", source)
    return data.decode("cp1252", errors="replace")


def _stream_text(path: Path, source: str, kind: str, notes: list[str]) -> Iterator[Page]:
    """Large text file -> segments of about SEGMENT_BYTES, cut at paragraph breaks."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None
    with fh:
        head = _read_block(fh, source)
        encoding = _sniff_encoding(head, source)
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        pending = decoder.decode(head)
        offset = 0
        seen_text = False
        while True:
            block = _read_block(fh, source)
            if block:
                pending += decoder.decode(block)
            else:
                pending += decoder.decode(b"", final=True)
            if block and len(pending) < SEGMENT_BYTES:
                continue
            cut = _segment_end(pending) if block else len(pending)
            segment, pending = pending[:cut], pending[cut:]
            segment = repair(segment, notes)
            if segment.strip():
                seen_text = True
                yield Page(source=source, page=None, text=segment, kind=kind, offset=offset)
            offset += len(segment)
            if not block:
                break
    if not seen_text:
        raise LoaderError(source, "empty file (no text)")


def _read_block(fh: BinaryIO, source: str) -> bytes:
    try:
        return fh.read(SEGMENT_BYTES)
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None


def _segment_end(text: str) -> int:
    """A cut near the end of text: after a blank line if there is one in the second
    half, else after a line break, else after a space."""
    for mark in ("\n\n", "\n", " "):
        cut = text.rfind(mark, len(text) // 2)
        if cut > 0:
            return cut + len(mark)
    return len(text)


def _sniff_encoding(head: bytes, source: str) -> str:
    """The encoding of a streamed file, judged from its first block alone."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head[:8192]:
        raise LoaderError(source, "binary data (NUL bytes) in a text file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"
