"""Word (.docx, python-docx) and PowerPoint (.pptx, python-pptx) files as Markdown-like
text, so the chunker cuts at their headings and list items as it does in a .md file.

Word: the body in reading order; "Heading N" and "Title" styles become headings, list
paragraphs list items, tables `Header: value` rows (rag/loaders/tables.py). Headers,
footers, comments and footnotes live in other parts of the package and are left out.

PowerPoint: one page per slide (`page` = slide number, location "slide N"), the title
as its heading, then text frames, tables and groups in reading order (top to bottom,
left to right); the speaker notes follow as a second segment of the same page,
located "slide N notes" and headed by the slide's title. Pictures, charts and
embedded objects are ignored; macros are never run (the libraries do not run them).

Both libraries parse with lxml with entity resolution off; the package is checked
(rag/loaders/zipped.py) before either sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import LoaderError
from ..types import Page
from .tables import cell, safe_line, table_paragraphs
from .text import repair
from .zipped import check_xml_parts, expect_ooxml, open_package, short

KINDS = {".docx": "markdown", ".pptx": "markdown"}
_WHAT = {".docx": "Word document", ".pptx": "PowerPoint presentation"}


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> list[Page]:
    """The pages of a .docx (one, page None) or .pptx (a page per slide with text)."""
    suffix = path.suffix.lower()
    what = _WHAT[suffix]
    with open_package(path, source, what) as zf:
        expect_ooxml(zf, source, suffix[1:])
        check_xml_parts(zf, source)
    try:
        pages = _docx_pages(path, source, notes) if suffix == ".docx" else list(_pptx_pages(path, source, notes))
    except LoaderError:
        raise
    except Exception as exc:  # the libraries raise many types on damaged parts
        raise LoaderError(source, f"damaged {what} ({short(exc)})") from None
    if not pages:
        raise LoaderError(source, "empty file (no text)")
    return pages


# --- Word ---------------------------------------------------------------------------

def _docx_pages(path: Path, source: str, notes: list[str]) -> list[Page]:
    import docx
    from docx.table import Table

    document = docx.Document(str(path))
    parts: list[str] = []
    numbered = 0  # the running number of a numbered list
    for block in _body_blocks(document.element.body, document._body):
        if isinstance(block, Table):
            parts.extend(table_paragraphs(_docx_rows(block)))
            numbered = 0
            continue
        line, numbered = _docx_paragraph(block, numbered)
        if line:
            parts.append(line)
    text = "\n\n".join(parts)
    if not text.strip():
        return []
    return [Page(source=source, page=None, text=repair(text, notes) + "\n", kind="markdown")]


def _body_blocks(container: Any, parent: Any) -> Iterator[Any]:
    """Paragraphs and tables in reading order, including those inside content controls
    (w:sdt, common on cover pages and in templates), which python-docx's own
    iter_inner_content passes over."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in container.iterchildren():
        if child.tag == _W + "p":
            yield Paragraph(child, parent)
        elif child.tag == _W + "tbl":
            yield Table(child, parent)
        elif child.tag == _W + "sdt":
            content = child.find(_W + "sdtContent")
            if content is not None:
                yield from _body_blocks(content, parent)


def _docx_paragraph(paragraph: Any, numbered: int) -> tuple[str, int]:
    """One paragraph as a Markdown line, and the list counter after it."""
    text = cell(_text_of(paragraph._p))
    if not text:
        return "", numbered
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    level = _heading_level(style)
    if level:
        return "#" * level + " " + text, 0
    num_pr = paragraph._p.pPr.numPr if paragraph._p.pPr is not None else None
    if num_pr is None and not style.startswith("List"):
        return safe_line(text), 0
    depth = num_pr.ilvl.val if num_pr is not None and num_pr.ilvl is not None else 0
    indent = "  " * min(depth, 8)
    if "Number" in style:
        return f"{indent}{numbered + 1}. {text}", numbered + 1
    return f"{indent}- {text}", numbered


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    name, _, number = style.partition(" ")
    if name == "Heading" and number.isdigit():
        return min(max(int(number), 1), 6)
    return 0


def _docx_rows(table: Any) -> Iterator[list[str]]:
    """Rows of cell texts; a merged cell's text repeats in each column and row it spans
    (python-docx's view), so a row's first cell is never blank because of a merge."""
    for row in table.rows:
        try:
            cells = row.cells
        except Exception:  # an irregular grid python-docx cannot lay out: read the cells as written
            yield [_text_of(tc) for tc in row._tr.tc_lst]
            continue
        seen, texts = set(), []
        for c in cells:
            if id(c._tc) in seen:  # the same merged cell again, across columns
                continue
            seen.add(id(c._tc))
            texts.append(_text_of(c._tc))
        yield texts


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_TEXT_TAGS = {_W + "t": None, _W + "tab": " ", _W + "br": " ", _W + "cr": " "}


def _text_of(element: Any) -> str:
    """The text of a paragraph or cell as the reader sees it, read from the XML itself:
    python-docx's .text leaves out runs inside tracked insertions (w:ins), which are
    part of the current text. Deleted text is w:delText and stays out; text boxes
    (w:txbxContent, anchored in a run) are left out as python-docx does."""
    parts = []
    for node in element.iter(*_TEXT_TAGS):
        if any(a.tag == _W + "txbxContent" for a in node.iterancestors()):
            continue
        parts.append(node.text or "" if node.tag == _W + "t" else _TEXT_TAGS[node.tag])
    return "".join(parts)


# --- PowerPoint ----------------------------------------------------------------------

def _pptx_pages(path: Path, source: str, notes: list[str]) -> Iterator[Page]:
    from pptx import Presentation

    presentation = Presentation(str(path))
    for number, slide in enumerate(presentation.slides, 1):
        title_shape = slide.shapes.title
        title = cell(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
        heading = [f"# {title}"] if title else []
        parts = []
        for shape in _reading_order(slide.shapes):
            if title_shape is None or shape.shape_id != title_shape.shape_id:
                parts.extend(_shape_parts(shape))
        body = "\n\n".join(heading + parts) + "\n" if heading or parts else ""
        if body:
            body = repair(body, notes)
            yield Page(source=source, page=number, text=body, kind="markdown", location=f"slide {number}")
        spoken = _notes_text(slide)
        if spoken:
            text = repair("\n\n".join(heading + [spoken]) + "\n", notes)
            yield Page(source=source, page=number, text=text, kind="markdown", offset=len(body),
                       location=f"slide {number} notes")


def _reading_order(shapes: Any) -> list[Any]:
    return sorted(shapes, key=lambda s: ((s.top or 0), (s.left or 0)))


def _shape_parts(shape: Any) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [p for child in _reading_order(shape.shapes) for p in _shape_parts(child)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return table_paragraphs([c.text for c in row.cells] for row in shape.table.rows)
    if not shape.has_text_frame:
        return []  # pictures, charts, media, embedded objects
    bulleted = shape.is_placeholder and shape.placeholder_format.type in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)
    parts = []
    for paragraph in shape.text_frame.paragraphs:
        text = cell(paragraph.text)
        if not text:
            continue
        if bulleted or paragraph.level:
            parts.append("  " * min(paragraph.level, 8) + "- " + text)
        else:
            parts.append(safe_line(text))
    return parts


def _notes_text(slide: Any) -> str:
    if not slide.has_notes_slide:  # asking for notes_slide would create one
        return ""
    frame = slide.notes_slide.notes_text_frame
    if frame is None:
        return ""
    return "\n\n".join(safe_line(cell(p.text)) for p in frame.paragraphs if cell(p.text))
