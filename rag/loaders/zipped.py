"""Zip packages (Office Open XML, OpenDocument, EPUB): the checks made before a parser
sees one, so a hostile or mislabelled file fails with a reason instead of exhausting
memory, expanding entities or being read as the wrong thing.

All checks read the zip's central directory and a few small parts, never a whole part:
- an OLE/CFB container (D0 CF 11 E0) where a zip should be is what Office writes for a
  password-protected file (or an old binary .doc/.xls/.ppt under a new name);
- a zip bomb: too many entries, too many bytes unpacked, or an entry that unpacks to
  more than MAX_RATIO times its packed size. zipfile never returns more bytes than an
  entry declares (a lying size fails its CRC check), so the declared sizes are a bound;
- XML parts whose prolog declares a DTD or entities (billion laughs, external
  entities): the parsers we use do not expand them, but refusing says why;
- the package's declared type ([Content_Types].xml, an ODF `mimetype`), so a .docx
  that is really a workbook is named as such.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Iterable

from ..errors import LoaderError
from .text import read_error_reason

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_MEMBERS = 10_000
MAX_UNPACKED = 512 << 20  # bytes, all parts that a parser holds in memory together
MAX_XML = 128 << 20  # bytes of those that are XML: a parsed tree takes several times its text
MAX_RATIO = 250  # deflate tops out near 1000:1; real XML stays well under 100:1
RATIO_FLOOR = 8 << 20  # small parts may compress as well as they like
_PROLOG_BYTES = 64 << 10  # a DTD must come before the root element, within this
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")  # a stream name in the CFB directory

# Office Open XML main-part content types, by the substrings that tell the three apart.
_OOXML = {
    "docx": ("wordprocessingml", "ms-word"),
    "xlsx": ("spreadsheetml", "ms-excel"),
    "pptx": ("presentationml", "ms-powerpoint"),
}
OOXML_NAMES = {"docx": "a Word document", "xlsx": "an Excel workbook", "pptx": "a PowerPoint presentation"}
_CONTENT_TYPE = re.compile(rb'ContentType="([^"]+)"')


def open_package(path: Path, source: str, what: str, streamed: Iterable[str] = ()) -> zipfile.ZipFile:
    """Open a zip package after the size checks; the caller closes it.

    Args:
        what: the format's name for messages ("Word document").
        streamed: name patterns (regexes) of parts the loader streams with bounded
            memory: they count against the ratio check but not MAX_UNPACKED.

    Raises:
        LoaderError: unreadable, encrypted, not a zip, damaged or a zip bomb.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None
    if not head:
        raise LoaderError(source, "empty file (no text)")
    if head == CFB_MAGIC:
        raise LoaderError(source, _cfb_reason(path, source))
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise LoaderError(source, f"damaged {what}: not a readable zip package (truncated or corrupt)") from None
    except OSError as exc:
        raise LoaderError(source, read_error_reason(exc)) from None
    try:
        _check_sizes(zf, source, [re.compile(p) for p in streamed])
    except LoaderError:
        zf.close()
        raise
    return zf


def _cfb_reason(path: Path, source: str) -> str:
    """An encrypted OOXML file names an EncryptionInfo stream in its CFB directory."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(32 << 20)
    except OSError as exc:
        return read_error_reason(exc)
    if _ENCRYPTION_INFO in data:
        return "encrypted; not supported"
    suffix = path.suffix.lower()
    return f"old binary Office format (OLE2), not supported; save it as {suffix} from the application"


def _check_sizes(zf: zipfile.ZipFile, source: str, streamed: list[re.Pattern[str]]) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise LoaderError(source, f"zip bomb? {len(infos):,} entries in the package (limit {MAX_MEMBERS:,})")
    held = xml = 0
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise LoaderError(
                source, f"zip bomb? {info.filename} unpacks {info.file_size // max(info.compress_size, 1):,} times "
                f"its packed size (limit {MAX_RATIO})")
        if not any(p.fullmatch(info.filename) for p in streamed):
            held += info.file_size
            xml += info.file_size if info.filename.lower().endswith((".xml", ".rels")) else 0
    if held > MAX_UNPACKED:
        raise LoaderError(source, f"too large to read safely: the package unpacks to {held >> 20:,} MB "
                          f"(limit {MAX_UNPACKED >> 20} MB)")
    if xml > MAX_XML:
        raise LoaderError(source, f"too large to read safely: {xml >> 20:,} MB of XML to parse "
                          f"(limit {MAX_XML >> 20} MB)")


def check_xml_parts(zf: zipfile.ZipFile, source: str, suffixes: tuple[str, ...] = (".xml", ".rels", ".opf")) -> None:
    """Refuse a package any of whose XML parts declares a DTD or entities in its prolog."""
    for info in zf.infolist():
        name = info.filename
        if not name.lower().endswith(suffixes) or info.is_dir():
            continue
        try:
            with zf.open(info) as fh:
                head = fh.read(_PROLOG_BYTES)
        except Exception as exc:  # zipfile, zlib: a damaged entry
            raise LoaderError(source, f"damaged package: {name} cannot be unpacked ({short(exc)})") from None
        if _declares_dtd(head):
            raise LoaderError(source, f"XML with a DTD or entity declarations ({name}); refused for safety")


def _declares_dtd(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="replace").encode("utf-8", errors="replace")
    # Comments and processing instructions go first: "<a" inside one is not the root.
    head = re.sub(rb"<!--.*?-->|<\?.*?\?>", b"", head, flags=re.S)
    root = re.search(rb"<[A-Za-z_]", head)
    if root is None and len(head) >= _PROLOG_BYTES // 2:
        return True  # a prolog this long only hides something further on
    prolog = head[: root.start()] if root else head
    return b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog or b"<!--" in prolog or b"<?" in prolog


def expect_ooxml(zf: zipfile.ZipFile, source: str, expected: str) -> None:
    """Check [Content_Types].xml declares the main part `expected` ("docx", "xlsx",
    "pptx") promises, and name what the package holds instead."""
    try:
        data = zf.read("[Content_Types].xml") if zf.getinfo("[Content_Types].xml").file_size < (4 << 20) else b""
    except KeyError:
        data = b""
    except Exception as exc:
        raise LoaderError(source, f"damaged package: [Content_Types].xml cannot be unpacked ({short(exc)})") from None
    found = set()
    for match in _CONTENT_TYPE.finditer(data):
        content_type = match.group(1).decode("ascii", errors="replace").lower()
        if not content_type.endswith(".main+xml"):
            continue
        found.update(k for k, marks in _OOXML.items() if any(m in content_type for m in marks))
    if expected in found:
        return
    wanted = f"not {OOXML_NAMES[expected]}"
    if found:
        other = sorted(found)[0]
        raise LoaderError(source, f"{wanted}: the file holds {OOXML_NAMES[other]} (.{other}); rename it")
    raise LoaderError(source, f"{wanted}: no main document part in the package")


def expect_odf(zf: zipfile.ZipFile, source: str, expected: str, what: str) -> None:
    """Check an OpenDocument package's `mimetype` entry is `expected` (or its template)."""
    try:
        mimetype = zf.read("mimetype")[:200].decode("ascii", errors="replace").strip()
    except KeyError:
        mimetype = ""
    except Exception as exc:
        raise LoaderError(source, f"damaged package: mimetype cannot be unpacked ({short(exc)})") from None
    if mimetype in (expected, expected + "-template"):
        return
    prefix = "application/vnd.oasis.opendocument."
    holds = f": the file holds OpenDocument {mimetype[len(prefix):]}" if mimetype.startswith(prefix) else ""
    raise LoaderError(source, f"not {what}{holds}")


def short(exc: BaseException) -> str:
    """An exception as a one-line reason, cut to a readable length."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
