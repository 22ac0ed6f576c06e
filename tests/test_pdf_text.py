"""PDF text that reads well (rag/loaders/pdf_text.py through rag/loaders/pdf.py): words
broken at line ends joined, compounds kept, running headers, footers and page numbers
dropped, and the stored page text still the text that chunk spans index into."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import shared

from rag.chunking import chunk_page
from rag.loaders import load
from rag.loaders.pdf_text import drop_furniture, join_hyphens

BODY = [
    ["Dense retriev-", "al finds passages by meaning. A large-scale index", "holds millions of them."],
    ["Sparse retrieval counts words. Large-", "scale collections need both, and the ex-", "isting tools do both."],
    ["Each chunk keeps its page, so a citation names the page it came", "from, and a reader can go and check it."],
    ["The last page says how the pieces fit to-", "gether: retrieve, then read, then answer."],
]


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format=(148, 210))  # A5, in millimetres
    pdf.set_font("Helvetica", size=10)
    for n, lines in enumerate(BODY, start=1):
        pdf.add_page()
        pdf.text(15, 12, "Journal of Retrieval Studies, vol. 3")
        for i, line in enumerate(lines):
            pdf.text(15, 30 + 6 * i, line)
        pdf.text(60, 200, f"Page {n} of {len(BODY)}")
    pdf.output(str(path))


def test_generated_pdf_reads_without_furniture_or_broken_words(tmp_path: Path):
    path = tmp_path / "journal.pdf"
    make_pdf(path)
    pages, notes = load(path, "journal.pdf")
    assert notes == [] and [p.page for p in pages] == [1, 2, 3, 4]
    text = "\n".join(p.text for p in pages)
    assert "Journal of Retrieval" not in text and "Page 2 of 4" not in text and "of 4" not in text
    assert "Dense retrieval finds" in text  # a syllable break, joined
    assert "Large-scale collections" in text  # written "large-scale" on page 1: keeps its hyphen
    assert "the existing tools" in text and "fit together:" in text
    assert not any(p.ocr for p in pages)


def test_chunk_spans_index_into_the_cleaned_page_text(tmp_path: Path):
    path = tmp_path / "journal.pdf"
    make_pdf(path)
    pages, _ = load(path, "journal.pdf")
    for page in pages:
        for chunk in chunk_page(page, lambda texts: [len(t.split()) for t in texts], 8, 2):
            assert page.text[chunk.start:chunk.end] == chunk.text


def test_hyphen_rules():
    assert join_hyphens("the Ex-\nisting method") == "the Existing method"
    assert join_hyphens("a self-\nattention layer; self attention") == "a self-attention layer; self attention"
    assert join_hyphens("well-known. A well-\nknown fact") == "well-known. A well-known fact"
    assert join_hyphens("a wellknown fact, well-\nknown") == "a wellknown fact, wellknown"
    assert join_hyphens("see arti-\nWeb and COVID-\n19") == "see arti-\nWeb and COVID-\n19"  # not broken words
    assert join_hyphens("caf\u00e9-\nt\u00e9ria") == "caf\u00e9t\u00e9ria"  # letters of any script
    assert join_hyphens("pre-\ntrained") == "pretrained"


def test_furniture_needs_repetition_on_enough_pages():
    bodies = ["Owls hunt at night.", "Cats sleep by day.", "Dogs fetch sticks.", "Fish swim.", "Birds sing."]
    pages = {n: f"Running head\n{body}\n{n}" for n, body in enumerate(bodies, start=1)}
    assert drop_furniture(pages) == {n: body for n, body in enumerate(bodies, start=1)}
    slides = {n: f"Thank you\n{n}" for n in range(1, 6)}
    assert drop_furniture(slides) == slides  # nothing left but "furniture": it is the text
    two = {1: "Head\nOne\n1", 2: "Head\nTwo\n2"}
    assert drop_furniture(two) == two  # too few pages to tell furniture from text
    once = {n: ("Abstract\n" if n == 1 else "") + body for n, body in enumerate(bodies, start=1)}
    assert drop_furniture(once) == once


@pytest.mark.shared_data
def test_shared_papers_read_better():
    paper, _ = load(shared("pdfs", "pm-naacl06-shinyama.pdf"), "paper.pdf")
    text = "\n".join(p.text for p in paper)
    assert "Ex-\nisting" not in text and "Existing" in text
    assert "single-document" in text  # a compound broken at a line end
    assert "\ufb01" not in text and "finding" in text  # the ligature spelt out
    columns, _ = load(shared("pdfs", "sf-multicolumn.pdf"), "columns.pdf")
    assert [p.text.rstrip().splitlines()[-1].strip() for p in columns] != ["1", "2", "3"]
    assert all(p.text.strip() for p in columns)
