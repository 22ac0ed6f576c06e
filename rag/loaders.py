"""Path -> pages of text. One function per format, chosen by the file's suffix.

A loader raises `LoaderError(path, reason)` for a file it cannot read at all; pages it
can read come back even when others fail (reported as notes). Text files larger than
STREAM_BYTES are read in segments of about a megabyte, cut at paragraph breaks, so
memory stays bounded whatever the file's size. PDFs are parsed under a time limit.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import signal
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import LoaderError
from .types import Page

log = logging.getLogger(__name__)

TEXT_KINDS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
}
SUPPORTED_SUFFIXES = frozenset(TEXT_KINDS) | {".pdf"}


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


STREAM_BYTES = 16 << 20  # text files above this are read in segments
SEGMENT_BYTES = 1 << 20
REPAIRED_NOTE = "mis-decoded text (mojibake) repaired"
DEFAULT_TIME_LIMIT = 120.0  # seconds to parse one PDF


def load(
    path: Path, source: str, passwords: Iterable[str] = (), time_limit: float | None = DEFAULT_TIME_LIMIT
) -> tuple[list[Page], list[str]]:
    """Read one whole file into pages (see iter_pages); returns the pages and the notes."""
    notes: list[str] = []
    pages = list(iter_pages(path, source, notes, passwords, time_limit))
    return pages, notes


def iter_pages(
    path: Path,
    source: str,
    notes: list[str],
    passwords: Iterable[str] = (),
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> Iterator[Page]:
    """Yield the pages (or segments) of one file that have text.

    Args:
        path: the file on disk.
        source: the name recorded for it in the index (relative path).
        notes: receives warnings about parts that were skipped or repaired.
        passwords: tried in order on encrypted PDFs after the empty password.
        time_limit: seconds a PDF may take to parse (None: no limit).

    Raises:
        LoaderError: the file has no usable text at all (possibly after some pages
            were yielded, for a large text file that fails part-way).
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        pages, pdf_notes = _load_pdf(path, source, tuple(passwords), time_limit)
        notes.extend(pdf_notes)
        yield from pages
        return
    kind = TEXT_KINDS.get(suffix)
    if kind is None:
        raise LoaderError(source, f"unsupported file type {suffix or '(no suffix)'}")
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size > STREAM_BYTES and kind != "html":
        yield from _stream_text(path, source, kind, notes)
        return
    text = decode_text(_read_bytes(path, source), source)
    if kind == "html":
        text = html_to_text(text)
    text = _repair(text, notes)
    if not text.strip():
        raise LoaderError(source, "empty file (no text)")
    yield Page(source=source, page=None, text=text, kind=kind)


# Sequences that UTF-8 text takes on when it is decoded as cp1252 or latin-1: a lead
# byte's character followed by a continuation byte's. Cheap to look for; ftfy, which
# is slower, only runs where one is found.
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u20ac\u2122]")


def _repair(text: str, notes: list[str]) -> str:
    if not _MOJIBAKE.search(text):
        return text
    import ftfy

    fixed = ftfy.fix_encoding(text)
    if fixed != text and REPAIRED_NOTE not in notes:
        notes.append(REPAIRED_NOTE)
    return fixed


def _stream_text(path: Path, source: str, kind: str, notes: list[str]) -> Iterator[Page]:
    """Large text file -> segments of about SEGMENT_BYTES, cut at paragraph breaks."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise LoaderError(source, _os_reason(exc)) from None
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
            segment = _repair(segment, notes)
            if segment.strip():
                seen_text = True
                yield Page(source=source, page=None, text=segment, kind=kind, offset=offset)
            offset += len(segment)
            if not block:
                break
    if not seen_text:
        raise LoaderError(source, "empty file (no text)")


def _read_block(fh: object, source: str) -> bytes:
    try:
        return fh.read(SEGMENT_BYTES)  # type: ignore[attr-defined]
    except OSError as exc:
        raise LoaderError(source, _os_reason(exc)) from None


def _segment_end(text: str) -> int:
    """A cut near the end of text: after a blank line if there is one in the second
    half, else after a line break, else after a space."""
    for mark in ("\n\n", "\n", " "):
        cut = text.rfind(mark, len(text) // 2)
        if cut > 0:
            return cut + len(mark)
    return len(text)


def _sniff_encoding(head: bytes, source: str) -> str:
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


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file vanished before it could be read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"cannot read: {exc.strerror or exc}"


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(source, _os_reason(exc)) from None


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


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


# Not "head": its end tag is optional, so skipping it could swallow the whole body.
_SKIP_TAGS = {"script", "style", "noscript", "template", "title", "svg", "iframe", "object"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "table", "tr", "section", "article", "header",
    "footer", "nav", "aside", "main", "blockquote", "pre", "dd", "dt", "dl", "hr",
    "figure", "figcaption", "form", "body",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _VisibleText(HTMLParser):
    """Collects the text a browser would show; headings become Markdown headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif self._skip:
            return
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif not self._skip and (tag in _HEADINGS or tag in _BLOCK_TAGS):
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"(#+ )\n+", r"\1", text)
    text = re.sub(r"^#+ *$", "", text, flags=re.M)  # an empty <h1></h1>
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


class _TimeUp(BaseException):
    """BaseException, so the parser's own `except Exception` cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM: only in the main thread on Unix;
    elsewhere the block runs unlimited). pypdf is pure Python, so the signal lands."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _load_pdf(
    path: Path, source: str, passwords: tuple[str, ...], time_limit: float | None = DEFAULT_TIME_LIMIT
) -> tuple[list[Page], list[str]]:
    try:
        with _time_limit(time_limit):
            return _parse_pdf(path, source, passwords)
    except _TimeUp:
        raise LoaderError(source, f"PDF parsing took longer than {time_limit:g} s and was stopped") from None


def _parse_pdf(path: Path, source: str, passwords: tuple[str, ...]) -> tuple[list[Page], list[str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    data = _read_bytes(path, source)
    if not data.strip():
        raise LoaderError(source, "empty file (no text)")
    import io

    warnings: list[str] = []
    damage = ""

    def open_reader(raw: bytes) -> tuple[Any, int]:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            _decrypt(reader, source, passwords)
        return reader, len(reader.pages)

    try:
        reader, n_pages = open_reader(data)
    except (PdfReadError, ValueError, KeyError, TypeError, RecursionError, OSError) as exc:
        damage = _short(exc)
        rebuilt = _rebuild_pdf(data)
        try:
            if rebuilt is None:
                raise exc
            reader, n_pages = open_reader(rebuilt)
        except (PdfReadError, ValueError, KeyError, TypeError, RecursionError, OSError):
            raise LoaderError(source, f"damaged PDF, no page could be read ({damage})") from None
        warnings.append(f"damaged PDF ({damage}): rebuilt from the {n_pages} page object(s) found in it")
    pages: list[Page] = []
    empty: list[int] = []
    for number in range(1, n_pages + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged pages
            warnings.append(f"page {number}: unreadable ({_short(exc)})")
            continue
        visible = text.strip()
        if visible and visible.count("\ufffd") > len(visible) * 0.3:
            # Glyphs with no way back to characters: typically a damaged or missing font.
            warnings.append(f"page {number}: unreadable (text could not be decoded)")
        elif visible:
            pages.append(Page(source=source, page=number, text=_repair(text, warnings), kind="pdf"))
        else:
            empty.append(number)
    if not pages:
        if damage:
            reason = f"damaged PDF, no page could be read ({damage})"
        elif empty and not warnings:
            reason = "no extractable text (scanned PDF? OCR is not supported)"
        else:
            reason = f"no readable page ({warnings[0]})" if warnings else "no readable page"
        raise LoaderError(source, reason)
    if empty:
        warnings.append(f"no extractable text on page(s) {_ranges(empty)} (scanned? OCR is not supported)")
    return pages, warnings


_OBJ = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def _rebuild_pdf(data: bytes) -> bytes | None:
    """Recovery for a PDF whose cross-reference table or trailer is lost (a truncated
    download, say): find every "N G obj" in the bytes, gather the objects that are
    pages into a new page tree, and append a fresh catalog, xref table and trailer.
    Pages whose own content was cut off still fail, one by one, when read."""
    offsets: dict[int, tuple[int, int]] = {}
    pages: list[int] = []
    for m in _OBJ.finditer(data):
        number, gen = int(m.group(1)), int(m.group(2))
        offsets[number] = (m.start(), gen)  # a later definition of a number wins, as in an update
    for number, (start, _) in sorted(offsets.items(), key=lambda kv: kv[1][0]):
        end = data.find(b"endobj", start)
        body = data[start : end if end > 0 else start + 4096]
        if _PAGE.search(body):
            pages.append(number)
    if not pages:
        return None
    top = max(offsets) + 1
    tree, catalog = top, top + 1
    out = bytearray(data)
    if not out.endswith(b"\n"):
        out += b"\n"
    kids = " ".join(f"{n} 0 R" for n in pages)
    for number, body in (
        (tree, f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>"),
        (catalog, f"<< /Type /Catalog /Pages {tree} 0 R >>"),
    ):
        offsets[number] = (len(out), 0)
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
        # A page's /Parent must point at the new tree for pypdf to walk it.
    xref_at = len(out)
    size = max(offsets) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for n in range(1, size):
        start, gen = offsets.get(n, (0, 65535))
        out += f"{start:010d} {gen:05d} {'n' if n in offsets else 'f'} \n".encode()
    out += f"trailer\n<< /Size {size} /Root {catalog} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def _decrypt(reader: object, source: str, passwords: tuple[str, ...]) -> None:
    for password in ("", *passwords):
        try:
            if reader.decrypt(password):  # type: ignore[attr-defined]
                return
        except Exception as exc:  # missing crypto backend, unsupported algorithm
            raise LoaderError(source, f"encrypted PDF that cannot be decrypted here ({_short(exc)})") from None
    hint = "the password(s) given do not open it" if passwords else "encrypted, needs a password (--pdf-password)"
    raise LoaderError(source, hint)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


