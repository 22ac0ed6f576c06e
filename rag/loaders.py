"""Path -> pages of text. One function per format, chosen by the file's suffix.

A loader raises `LoaderError(path, reason)` for a file it cannot read at all; pages it
can read come back even when others fail (reported as warnings).
"""

from __future__ import annotations

import codecs
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

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


def load(path: Path, source: str, passwords: Iterable[str] = ()) -> tuple[list[Page], list[str]]:
    """Read one file into pages.

    Args:
        path: the file on disk.
        source: the name recorded for it in the index (relative path).
        passwords: tried in order on encrypted PDFs after the empty password.

    Returns:
        The pages with text, and warnings about parts that were skipped.

    Raises:
        LoaderError: the file has no usable text at all.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _load_pdf(path, source, tuple(passwords))
    kind = TEXT_KINDS.get(suffix)
    if kind is None:
        raise LoaderError(source, f"unsupported file type {suffix or '(no suffix)'}")
    data = _read_bytes(path, source)
    text = decode_text(data, source)
    if kind == "html":
        text = html_to_text(text)
    if not text.strip():
        raise LoaderError(source, "empty file (no text)")
    return [Page(source=source, page=None, text=text, kind=kind)], []


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoaderError(source, "file vanished before it could be read") from None
    except PermissionError:
        raise LoaderError(source, "permission denied") from None
    except IsADirectoryError:
        raise LoaderError(source, "is a directory") from None
    except OSError as exc:
        raise LoaderError(source, f"cannot read: {exc.strerror or exc}") from None


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


def _load_pdf(path: Path, source: str, passwords: tuple[str, ...]) -> tuple[list[Page], list[str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    data = _read_bytes(path, source)
    if not data.strip():
        raise LoaderError(source, "empty file (no text)")
    try:
        import io

        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _decrypt(reader, source, passwords)
        n_pages = len(reader.pages)
    except LoaderError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, RecursionError, OSError) as exc:
        raise LoaderError(source, f"damaged PDF, no page could be read ({_short(exc)})") from None
    pages: list[Page] = []
    warnings: list[str] = []
    empty: list[int] = []
    for number in range(1, n_pages + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged pages
            warnings.append(f"page {number}: unreadable ({_short(exc)})")
            continue
        if text.strip():
            pages.append(Page(source=source, page=number, text=text, kind="pdf"))
        else:
            empty.append(number)
    if empty:
        warnings.append(f"no extractable text on page(s) {_ranges(empty)} (scanned? OCR is not supported)")
    if not pages:
        reason = "no extractable text (scanned PDF? OCR is not supported)" if empty else "no readable page"
        raise LoaderError(source, reason)
    return pages, warnings


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


