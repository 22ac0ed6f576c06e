"""PDF files with pypdf: one page per PDF page that has text, encrypted files opened
with the passwords given, and files whose cross-reference table is lost (a truncated
download, say) rebuilt from the page objects still in them.

Pages without a usable text layer (scans) are rendered with PDFium and recognised
(rag/loaders/ocr.py) as `--ocr` says, and marked `ocr=True`. The text then goes through
rag/loaders/pdf_text.py (broken words joined, running headers and footers dropped)
before it becomes a Page, so chunk spans and quotes index into the cleaned text.

Pages that fail are notes, not failures, as long as one page reads; the file fails
only when none does, with the likeliest reason (scanned, damaged, locked). pypdf is
pure Python and can loop on a hostile file: the package runs this loader under the
per-file time limit.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import LoaderError
from ..types import Page
from .pdf_objstm import unpack_object_streams
from .pdf_orphans import stand_in_pages
from .pdf_text import clean_pages
from .text import read_bytes, repair

KINDS = {".pdf": "pdf"}
# A page whose text layer has fewer letters than this has "no usable text" for --ocr
# auto: a scan often carries a page number, a stamp or a scanner's name as text, and
# real text pages have hundreds. Such a page is recognised only if it draws an image.
MIN_LETTERS = 25
RENDER_SIDE = 2000  # pixels of a page's long side when rendered for OCR (A4: 171 dpi)

_OBJ = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def read(
    path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = (), ocr: str = "auto"
) -> list[Page]:
    """The pages of a PDF that have text (OCR'd where `ocr` says); what was skipped goes into `notes`."""
    pages, warnings = _parse_pdf(path, source, tuple(passwords), ocr)
    notes.extend(warnings)
    return pages


def _parse_pdf(path: Path, source: str, passwords: tuple[str, ...], ocr: str) -> tuple[list[Page], list[str]]:
    data = read_bytes(path, source)
    if not data.strip():
        raise LoaderError(source, "empty file (no text)")
    opened = _open(data, source, passwords)
    warnings: list[str] = []
    if opened.damage:
        warnings.append(f"damaged PDF ({opened.damage}): rebuilt from the {opened.n_pages} page object(s) found in it")
    texts, undecodable = _text_layer(opened, warnings)
    todo = _to_recognise(texts, undecodable, ocr)
    recognised = _recognise(opened, todo, every=ocr == "always", warnings=warnings) if todo else {}
    for number in undecodable:
        if number not in recognised:
            # Glyphs with no way back to characters: typically a damaged or missing font.
            warnings.append(f"page {number}: unreadable (text could not be decoded)")
    final = {n: t for n, t in sorted({**texts, **recognised}.items()) if t.strip()}
    pages = [
        Page(source=source, page=number, text=repair(text, warnings), kind="pdf", ocr=number in recognised)
        for number, text in clean_pages(final).items()
    ]
    pages = [page for page in pages if page.text.strip()]
    empty = sorted(n for n in texts if n not in final)
    if not pages:
        raise LoaderError(source, _no_page_reason(opened.damage, empty, warnings, ocr))
    if empty:
        warnings.append(f"no extractable text on page(s) {_ranges(empty)} ({_why_empty(ocr)})")
    return pages, warnings


def _text_layer(opened: _Opened, warnings: list[str]) -> tuple[dict[int, str], list[int]]:
    """The text layer of each page that reads ("" for none), and the pages whose text
    could not be decoded; pages that fail are warnings."""
    texts: dict[int, str] = {}
    undecodable: list[int] = []
    for number in range(1, opened.n_pages + 1):
        try:
            text = opened.reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged pages
            warnings.append(f"page {number}: unreadable ({_short(exc)})")
            continue
        visible = text.strip()
        if visible and (visible.count("\ufffd") > len(visible) * 0.3 or _controls(visible) > len(visible) * 0.02):
            undecodable.append(number)
        else:
            texts[number] = text
    return texts, undecodable


def _to_recognise(texts: dict[int, str], undecodable: list[int], ocr: str) -> list[int]:
    """The pages to OCR: every page that read for "always"; for "auto" those with fewer
    than MIN_LETTERS letters in their text layer (a scan's stray page number or stamp)
    or an undecodable one."""
    if ocr == "never":
        return []
    if ocr == "always":
        return sorted([*texts, *undecodable])
    thin = [n for n, text in texts.items() if sum(c.isalpha() for c in text) < MIN_LETTERS]
    return sorted([*thin, *undecodable])


def _recognise(opened: _Opened, numbers: list[int], every: bool, warnings: list[str]) -> dict[int, str]:
    """OCR text of the given pages, rendered with PDFium. Unless `every`, a page that
    draws no image is passed over: its few letters are all the text it has (a title
    page, a blank page)."""
    import pypdfium2 as pdfium

    from . import ocr
    from .pdfium_lock import PDFIUM

    try:
        with PDFIUM:
            document = pdfium.PdfDocument(opened.data, password=opened.password)
    except pdfium.PdfiumError as exc:
        warnings.append(f"page(s) {_ranges(numbers)} could not be rendered for OCR ({_short(exc)})")
        return {}
    found: dict[int, str] = {}
    try:
        ocr.allow_time(len(numbers))
        for number in numbers:
            if number > len(document):
                continue
            with PDFIUM:
                image = _page_image(document, number, every, warnings)
            if image is None:
                continue
            text = ocr.recognise(image).text  # outside the lock: the long part
            if text.strip():
                found[number] = text
    finally:
        with PDFIUM:
            document.close()
    return found


def _page_image(document: Any, number: int, every: bool, warnings: list[str]) -> Any:
    """Page `number` rendered for OCR, or None (no image on it unless `every`, or PDFium
    failed: noted in `warnings`)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        page = document[number - 1]
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {number}: could not be rendered for OCR ({_short(exc)})")
        return None
    try:
        if not every and not any(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3)):
            return None
        return _render(page)
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {number}: could not be rendered for OCR ({_short(exc)})")
        return None
    finally:
        page.close()


def _render(page: Any) -> Any:
    """A greyscale picture of the page, its long side RENDER_SIDE pixels (at most 300 dpi)."""
    width, height = page.get_size()  # points: 1/72 inch
    scale = min(RENDER_SIDE / max(width, height, 1.0), 300 / 72)
    return page.render(scale=scale, grayscale=True).to_pil()


def _why_empty(ocr: str) -> str:
    return "scanned? OCR is off: --ocr never" if ocr == "never" else "blank, or OCR found no text"


@dataclass(frozen=True)
class _Opened:
    reader: Any  # pypdf's PdfReader, decrypted
    n_pages: int
    damage: str  # what was damaged ("" if nothing); then reader and data are the rebuilt file
    data: bytes
    password: str | None  # the one that opened it, for the renderer


def _open(data: bytes, source: str, passwords: tuple[str, ...]) -> _Opened:
    from pypdf.errors import PdfReadError

    broken = (PdfReadError, ValueError, KeyError, TypeError, RecursionError, OSError)
    try:
        return _reader(data, source, passwords, "")
    except broken as exc:
        damage = _short(exc)
        rebuilt = rebuild_pdf(data)
        try:
            if rebuilt is None:
                raise exc
            return _reader(rebuilt, source, passwords, damage)
        except broken:
            raise LoaderError(source, f"damaged PDF, no page could be read ({damage})") from None
    except NotImplementedError as exc:  # pypdf on a feature it lacks, e.g. a damaged /Encrypt (/V 0)
        raise LoaderError(source, f"PDF uses something pypdf cannot read ({_short(exc)})") from None


def _reader(raw: bytes, source: str, passwords: tuple[str, ...], damage: str) -> _Opened:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw), strict=False)
    password = _decrypt(reader, source, passwords) if reader.is_encrypted else None
    return _Opened(reader, len(reader.pages), damage, raw, password)


def _decrypt(reader: Any, source: str, passwords: tuple[str, ...]) -> str:
    for password in ("", *passwords):
        try:
            if reader.decrypt(password):
                return password
        except Exception as exc:  # missing crypto backend, unsupported algorithm
            raise LoaderError(source, f"encrypted PDF that cannot be decrypted here ({_short(exc)})") from None
    hint = "the password(s) given do not open it" if passwords else "encrypted, needs a password (--pdf-password)"
    raise LoaderError(source, hint)


def _no_page_reason(damage: str, empty: list[int], warnings: list[str], ocr: str) -> str:
    if damage:
        return f"damaged PDF, no page could be read ({damage})"
    if empty and not warnings:
        return f"no extractable text ({_why_empty(ocr).replace('scanned?', 'scanned PDF?')})"
    return f"no readable page ({warnings[0]})" if warnings else "no readable page"


def rebuild_pdf(data: bytes) -> bytes | None:
    """Recovery for a PDF whose cross-reference table or trailer is lost: find every
    "N G obj" in the bytes, gather the objects that are pages into a new page tree, and
    append a fresh catalog, xref table and trailer. Objects packed in object streams
    (rag/loaders/pdf_objstm.py) are written out as plain objects first, and text content
    streams no surviving page points to get pages of their own (rag/loaders/pdf_orphans.py).
    Pages whose own content was cut off still fail, one by one, when read. None when no
    page is found, and for an encrypted file (its key needs the lost trailer's /ID)."""
    if re.search(rb"/Encrypt\b|/Filter\s*/Standard\b", data):
        return None
    offsets, bodies = _plain_objects(data)
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    for number, body in sorted(unpack_object_streams(data).items()):  # PDF 1.5+ object streams
        if number not in offsets:
            offsets[number] = (len(out), 0)
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
            bodies[number] = body
    pages = [n for n, body in bodies.items() if _PAGE.search(body)]
    free = max([*offsets, *(int(m.group(1)) for m in _OBJ.finditer(data))], default=0) + 1  # even cut ones
    extra, orphans = stand_in_pages(data, {n: bodies[n] for n in pages}, set(offsets), free)
    for number, body in extra:  # a page given again here replaces its first definition
        offsets[number] = (len(out), 0)
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    pages += orphans
    if not pages:
        return None
    return _with_page_tree(out, offsets, pages)


def _plain_objects(data: bytes) -> tuple[dict[int, tuple[int, int]], dict[int, bytes]]:
    """Each complete "N G obj ... endobj" in the bytes: its offset and generation, and its body."""
    offsets: dict[int, tuple[int, int]] = {}
    heads: dict[int, int] = {}  # where each object's body starts, after "N G obj"
    for m in _OBJ.finditer(data):
        offsets[int(m.group(1))] = (m.start(), int(m.group(2)))  # a later definition wins, as in an update
        heads[int(m.group(1))] = m.end()
    bodies: dict[int, bytes] = {}
    for number, (start, _) in sorted(offsets.items(), key=lambda kv: kv[1][0]):
        end = data.find(b"endobj", start)
        if end < 0 and b"stream" in data[start:]:  # a stream the file was cut in: pypdf loops on it
            del offsets[number]
            continue
        bodies[number] = data[heads[number] : end if end > 0 else len(data)]  # a cut dictionary still reads
    return offsets, bodies


def _with_page_tree(out: bytearray, offsets: dict[int, tuple[int, int]], pages: list[int]) -> bytes:
    top = max(offsets) + 1
    tree, catalog = top, top + 1
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


def _controls(text: str) -> int:
    """Control characters in extracted text: glyph codes of a font whose mapping to
    characters is missing (lost with a damaged file, or never written) come out as these."""
    return sum(1 for c in text if c < " " and c not in "\t\n\r\f")


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
