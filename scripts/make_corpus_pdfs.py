"""Build the sample PDF documents of the corpus from plain-text sources.

Each file ``scripts/pdf_text/<stem>.txt`` becomes ``corpus/<stem>.pdf``.
The first line of a source file is the document title; the rest is split
into pages on lines that contain exactly ``<<<PAGE>>>``, and every section
is rendered on its own PDF page. Metadata and the creation date are fixed
so that repeated runs produce identical files.

Usage: python scripts/make_corpus_pdfs.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader

SCRIPT_DIR = Path(__file__).resolve().parent
TEXT_DIR = SCRIPT_DIR / "pdf_text"
CORPUS_DIR = SCRIPT_DIR.parent / "corpus"

PAGE_MARKER = "<<<PAGE>>>"
FONT = "Helvetica"
BODY_SIZE = 11
TITLE_SIZE = 15
LINE_HEIGHT = 5.5  # millimetres
FIXED_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def split_source(text: str) -> tuple[str, list[str]]:
    """Return the title and the list of page sections of a source file."""
    title, _, body = text.partition("\n")
    sections: list[list[str]] = [[]]
    for line in body.splitlines():
        if line.strip() == PAGE_MARKER:
            sections.append([])
        else:
            sections[-1].append(line)
    pages = ["\n".join(lines).strip() for lines in sections]
    if not title.strip() or not all(pages):
        raise ValueError("source needs a title line and non-empty page sections")
    return title.strip(), pages


def render(title: str, pages: list[str], target: Path) -> None:
    """Write one PDF page per section to ``target``."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(left=20, top=18, right=20)
    pdf.set_title(title)
    pdf.set_author("rag sample corpus")
    pdf.set_creator("scripts/make_corpus_pdfs.py")
    pdf.set_producer("fpdf2")
    pdf.set_creation_date(FIXED_DATE)
    for number, section in enumerate(pages, start=1):
        pdf.add_page()
        if number == 1:
            pdf.set_font(FONT, style="B", size=TITLE_SIZE)
            pdf.multi_cell(0, 7.5, title)
            pdf.ln(3)
        pdf.set_font(FONT, size=BODY_SIZE)
        for paragraph in section.split("\n\n"):
            pdf.multi_cell(0, LINE_HEIGHT, paragraph.strip())
            pdf.ln(2)
    pdf.output(str(target))


def build(source: Path) -> Path:
    """Render ``source`` into the corpus and check its page count."""
    title, pages = split_source(source.read_text(encoding="ascii"))
    target = CORPUS_DIR / f"{source.stem}.pdf"
    render(title, pages, target)
    produced = len(PdfReader(target).pages)
    if produced != len(pages):
        raise RuntimeError(
            f"{target.name}: {produced} PDF pages for {len(pages)} sections; "
            "shorten a section or reduce the font size"
        )
    return target


def main() -> None:
    sources = sorted(TEXT_DIR.glob("*.txt"))
    if not sources:
        raise SystemExit(f"no source files in {TEXT_DIR}")
    for source in sources:
        target = build(source)
        print(f"wrote {target.relative_to(CORPUS_DIR.parent)}")


if __name__ == "__main__":
    main()
