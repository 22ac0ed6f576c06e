"""PDF files with pypdf: one page per PDF page that has text, encrypted files opened
with the passwords given, and files whose cross-reference table is lost (a truncated
download, say) rebuilt from the page objects still in them.

Pages that fail are notes, not failures, as long as one page reads; the file fails
only when none does, with the likeliest reason (scanned, damaged, locked). pypdf is
pure Python and can loop on a hostile file: the package runs this loader under the
per-file time limit.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Iterable

from ..errors import LoaderError
from ..types import Page
from .text import read_bytes, repair

KINDS = {".pdf": "pdf"}

_OBJ = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> list[Page]:
    """The pages of a PDF that have text; what was skipped goes into `notes`."""
    pages, warnings = _parse_pdf(path, source, tuple(passwords))
    notes.extend(warnings)
    return pages


def _parse_pdf(path: Path, source: str, passwords: tuple[str, ...]) -> tuple[list[Page], list[str]]:
    data = read_bytes(path, source)
    if not data.strip():
        raise LoaderError(source, "empty file (no text)")
    reader, n_pages, damage = _open(data, source, passwords)
    warnings: list[str] = []
    if damage:
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
            pages.append(Page(source=source, page=number, text=repair(text, warnings), kind="pdf"))
        else:
            empty.append(number)
    if not pages:
        raise LoaderError(source, _no_page_reason(damage, empty, warnings))
    if empty:
        warnings.append(f"no extractable text on page(s) {_ranges(empty)} (scanned? OCR is not supported)")
    return pages, warnings


def _open(data: bytes, source: str, passwords: tuple[str, ...]) -> tuple[Any, int, str]:
    """A reader and its page count; the third value says what was damaged ("" if nothing),
    in which case the reader is over the rebuilt file."""
    from pypdf.errors import PdfReadError

    broken = (PdfReadError, ValueError, KeyError, TypeError, RecursionError, OSError)
    try:
        reader, n_pages = _reader(data, source, passwords)
        return reader, n_pages, ""
    except broken as exc:
        damage = _short(exc)
        rebuilt = rebuild_pdf(data)
        try:
            if rebuilt is None:
                raise exc
            reader, n_pages = _reader(rebuilt, source, passwords)
        except broken:
            raise LoaderError(source, f"damaged PDF, no page could be read ({damage})") from None
        return reader, n_pages, damage


def _reader(raw: bytes, source: str, passwords: tuple[str, ...]) -> tuple[Any, int]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw), strict=False)
    if reader.is_encrypted:
        _decrypt(reader, source, passwords)
    return reader, len(reader.pages)


def _decrypt(reader: Any, source: str, passwords: tuple[str, ...]) -> None:
    for password in ("", *passwords):
        try:
            if reader.decrypt(password):
                return
        except Exception as exc:  # missing crypto backend, unsupported algorithm
            raise LoaderError(source, f"encrypted PDF that cannot be decrypted here ({_short(exc)})") from None
    hint = "the password(s) given do not open it" if passwords else "encrypted, needs a password (--pdf-password)"
    raise LoaderError(source, hint)


def _no_page_reason(damage: str, empty: list[int], warnings: list[str]) -> str:
    if damage:
        return f"damaged PDF, no page could be read ({damage})"
    if empty and not warnings:
        return "no extractable text (scanned PDF? OCR is not supported)"
    return f"no readable page ({warnings[0]})" if warnings else "no readable page"


def rebuild_pdf(data: bytes) -> bytes | None:
    """Recovery for a PDF whose cross-reference table or trailer is lost: find every
    "N G obj" in the bytes, gather the objects that are pages into a new page tree, and
    append a fresh catalog, xref table and trailer. Pages whose own content was cut off
    still fail, one by one, when read. None when no page object is found."""
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
    xref_at = len(out)
    size = max(offsets) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for n in range(1, size):
        start, gen = offsets.get(n, (0, 65535))
        out += f"{start:010d} {gen:05d} {'n' if n in offsets else 'f'} \n".encode()
    out += f"trailer\n<< /Size {size} /Root {catalog} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
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
