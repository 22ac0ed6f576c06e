"""OpenDocument text (.odt) and slides (.odp), read from the package's content.xml with
defusedxml (no DTDs, no entities), like their Word and PowerPoint counterparts.

.odt: headings (text:h and its outline level) become Markdown headings, lists keep
their items, tables are `Header: value` rows (rag/loaders/tables.py). Headers and
footers (in styles.xml), comments (office:annotation), footnotes, tracked deletions
and the generated table of contents are left out.

.odp: one page per slide (draw:page), located "slide N", headed by its title frame;
the speaker notes (presentation:notes) are a second segment "slide N notes".

The spreadsheet (.ods) reader is in rag/loaders/sheets.py and shares `inline_text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from ..errors import LoaderError
from ..types import Page
from .tables import cell, safe_line, table_paragraphs
from .text import repair
from .zipped import check_xml_parts, expect_odf, open_package, short

if TYPE_CHECKING:  # ElementTree is imported when a file is read, not with the CLI
    from xml.etree.ElementTree import Element

KINDS = {".odt": "markdown", ".odp": "markdown"}
_MIME = {".odt": "application/vnd.oasis.opendocument.text", ".odp": "application/vnd.oasis.opendocument.presentation"}
_WHAT = {".odt": "an OpenDocument text", ".odp": "an OpenDocument presentation"}

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}


def q(name: str) -> str:
    """"text:p" -> "{urn:...:text:1.0}p", ElementTree's spelling."""
    prefix, _, local = name.partition(":")
    return f"{{{_NS[prefix]}}}{local}"


# Inside a paragraph: left out entirely (their tails, the text after them, are kept).
_SKIP_INLINE = {q("office:annotation"), q("office:annotation-end"), q("text:note"), q("draw:frame"),
                q("text:tracked-changes"), q("text:bookmark-ref")}
# Between blocks: containers whose blocks are read, and parts that are not body text.
_CONTAINERS = {q("text:section"), q("text:index-body"), q("draw:text-box"), q("office:text")}
_SKIP_BLOCKS = {q("text:table-of-content"), q("text:tracked-changes"), q("office:forms"),
                q("text:sequence-decls"), q("office:annotation"), q("text:user-field-decls")}
_ROW_PARENTS = {q("table:table-header-rows"), q("table:table-rows"), q("table:table-row-group")}
MAX_REPEAT = 64  # a cell or row repeated more often than this is written this often


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> list[Page]:
    """The pages of an .odt (one, page None) or .odp (one per slide, plus notes)."""
    suffix = path.suffix.lower()
    with open_package(path, source, _WHAT[suffix]) as zf:
        expect_odf(zf, source, _MIME[suffix], _WHAT[suffix])
        check_xml_parts(zf, source)
        root = parse_part(zf, "content.xml", source)
    body = root.find(f"{q('office:body')}/{q('office:text' if suffix == '.odt' else 'office:presentation')}")
    if body is None:
        raise LoaderError(source, f"damaged {_WHAT[suffix]}: no document body in content.xml")
    if suffix == ".odt":
        text = "\n\n".join(blocks(body))
        pages = [Page(source=source, page=None, text=repair(text, notes) + "\n", kind="markdown")] if text else []
    else:
        pages = list(_slides(body, source, notes))
    if not pages:
        raise LoaderError(source, "empty file (no text)")
    return pages


def parse_part(zf: object, name: str, source: str) -> Element:
    import defusedxml.ElementTree as SafeET

    try:
        data = zf.read(name)  # type: ignore[attr-defined]
        return SafeET.fromstring(data, forbid_dtd=True)
    except KeyError:
        raise LoaderError(source, f"damaged package: no {name}") from None
    except Exception as exc:  # zipfile, zlib, expat, defusedxml
        raise LoaderError(source, f"damaged package: {name} cannot be read ({short(exc)})") from None


def inline_text(element: Element) -> str:
    """The text of a paragraph as shown: spans and links flattened, text:s as spaces."""
    out: list[str] = []
    _collect(element, out)
    return cell("".join(out))


def _collect(element: Element, out: list[str]) -> None:
    out.append(element.text or "")
    for child in element:
        if child.tag == q("text:s"):
            out.append(" " * min(int(child.get(q("text:c"), "1") or 1), 100))
        elif child.tag in (q("text:tab"), q("text:line-break")):
            out.append(" ")
        elif child.tag not in _SKIP_INLINE:
            _collect(child, out)
        out.append(child.tail or "")


def blocks(element: Element, depth: int = 0) -> Iterator[str]:
    """The paragraphs of a text container as Markdown lines, in document order."""
    for child in element:
        tag = child.tag
        if tag == q("text:h"):
            text = inline_text(child)
            level = min(max(int(child.get(q("text:outline-level"), "1") or 1), 1), 6)
            if text:
                yield "#" * level + " " + text
        elif tag == q("text:p"):
            text = inline_text(child)
            if text:
                yield safe_line(text)
        elif tag == q("text:list"):
            yield from _list_items(child, depth)
        elif tag == q("table:table"):
            yield from table_paragraphs(table_rows(child))
        elif tag in _CONTAINERS:
            yield from blocks(child, depth)
        elif tag in _SKIP_BLOCKS:
            continue


def _list_items(lst: Element, depth: int) -> Iterator[str]:
    indent = "  " * min(depth, 8)
    for item in lst:
        if item.tag not in (q("text:list-item"), q("text:list-header")):
            continue
        for child in item:
            if child.tag == q("text:list"):
                yield from _list_items(child, depth + 1)
            elif child.tag in (q("text:p"), q("text:h")):
                text = inline_text(child)
                if text:
                    yield f"{indent}- {text}"


def table_rows(table: Element) -> Iterator[list[str]]:
    """A document table's rows of cell texts, repeated rows and columns written out."""
    for child in table:
        if child.tag in _ROW_PARENTS:
            yield from table_rows(child)
        elif child.tag == q("table:table-row"):
            cells = row_cells(child)
            repeat = int(child.get(q("table:number-rows-repeated"), "1") or 1)
            for _ in range(min(repeat, MAX_REPEAT) if any(cells) else 1):
                yield cells


def row_cells(row: Element) -> list[str]:
    """One table:table-row's cell texts as displayed; trailing empty cells dropped."""
    cells: list[str] = []
    for c in row:
        if c.tag not in (q("table:table-cell"), q("table:covered-table-cell")):
            continue
        text = " ".join(inline_text(p) for p in c if p.tag in (q("text:p"), q("text:h")))
        repeat = int(c.get(q("table:number-columns-repeated"), "1") or 1)
        if text:
            cells.extend([text] * min(repeat, MAX_REPEAT))
        else:
            cells.extend([""] * min(repeat, 1024))  # empty filler up to the sheet's edge
        if len(cells) > 1024:
            break
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _slides(body: Element, source: str, notes: list[str]) -> Iterator[Page]:
    for number, slide in enumerate(body.iter(q("draw:page")), 1):
        title, parts, spoken = "", [], []
        for frame in slide:
            if frame.tag == q("presentation:notes"):
                spoken = [p for box in frame.iter(q("draw:text-box")) for p in blocks(box)]
            elif frame.get(q("presentation:class")) == "title" and not title:
                title = cell(" ".join(inline_text(p) for p in frame.iter(q("text:p"))))
            else:
                parts.extend(_frame_parts(frame))
        heading = [f"# {title}"] if title else []
        body_text = "\n\n".join(heading + parts) + "\n" if heading or parts else ""
        if body_text:
            yield Page(source=source, page=number, text=repair(body_text, notes), kind="markdown",
                       location=f"slide {number}")
        if spoken:
            yield Page(source=source, page=number, text=repair("\n\n".join(heading + spoken) + "\n", notes),
                       kind="markdown", offset=len(body_text), location=f"slide {number} notes")


def _frame_parts(frame: Element) -> list[str]:
    """A slide's frame, custom shape or group: its text boxes and tables."""
    if frame.tag == q("draw:g"):
        return [p for child in frame for p in _frame_parts(child)]
    parts: list[str] = []
    for child in frame:
        if child.tag == q("draw:text-box"):
            parts.extend(blocks(child))
        elif child.tag == q("table:table"):
            parts.extend(table_paragraphs(table_rows(child)))
        elif child.tag in (q("text:p"), q("text:list")):  # a custom shape holds its text directly
            parts.extend(blocks(_wrap(child)))
    return parts


def _wrap(element: Element) -> Element:
    from xml.etree.ElementTree import Element

    holder = Element("holder")
    holder.append(element)
    return holder
