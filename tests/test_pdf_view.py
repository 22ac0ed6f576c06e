"""rag/serve/pdf_view.py: stored offsets matched to PDFium's characters, and the boxes
of a quote on a rendered page, also on a rotated page (checked by mapping each box back
to page points with PDFium's inverse transform and reading the text under it)."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from rag.loaders import pdf as pdf_loader
from rag.serve.pdf_view import match, merge_boxes, quote_boxes, visible


def chars(text: str, first: int = 0) -> list[tuple[int, str]]:
    return [(first + i, ch) for i, ch in enumerate(text)]


def test_visible_spells_out_ligatures_and_drops_spaces_and_hyphens():
    v = visible(chars("ﬁne  self-\r\nmade"))
    assert v.text == "fineselfmade"
    assert v.origin[:2] == (0, 0)  # both letters of the ligature come from its one index


def test_a_quote_is_found_across_a_joined_line_end_hyphen():
    stored = "The Existing method works."  # pdf_text.py joined "Ex-\nisting"
    pdfium = "The Ex-\r\nisting method works."
    start = stored.index("Existing")
    indices, share = match(stored, start, start + len("Existing method"), visible(chars(pdfium)))
    assert share == 1.0
    assert "".join(pdfium[i] for i in indices) == "Existingmethod"


def test_the_occurrence_nearest_the_quotes_place_wins():
    stored = "cats sleep. dogs bark. cats sleep."
    start = stored.rindex("cats sleep")
    indices, _ = match(stored, start, start + len("cats sleep"), visible(chars(stored)))
    assert min(indices) == start


def test_a_reordered_page_still_boxes_the_shared_runs():
    stored = "alpha beta gamma delta epsilon"
    pdfium = "gamma delta epsilon alpha beta"  # another reading order
    indices, share = match(stored, 0, len(stored), visible(chars(pdfium)))
    assert share == 1.0  # every run of four characters or more is shared
    assert len(indices) == len(stored.replace(" ", ""))


def test_boxes_on_one_line_merge():
    merged = merge_boxes([[0, 0, 10, 12], [10, 0, 20, 12], [21, 1, 30, 12], [0, 20, 10, 32]])
    assert merged == [[0, 0, 30, 12], [0, 20, 10, 32]]


@pytest.mark.parametrize("rotation", [0, 90])
def test_a_quote_is_boxed_on_the_rendered_page(tmp_path: Path, rotation: int):
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    made = FPDF()
    made.add_page()
    made.set_font("helvetica", size=12)
    made.multi_cell(0, 8, "Lichens are partnerships of a fungus with an alga or a cyanobacterium. They grow on "
                          "bare rock and bark, and some species survive decades without water.")
    path = tmp_path / "lichens.pdf"
    made.output(str(path))
    if rotation:
        writer = PdfWriter()
        for page in PdfReader(str(path)).pages:
            writer.add_page(page.rotate(rotation))
        with open(path, "wb") as f:
            writer.write(f)
    stored = pdf_loader.read(path, "lichens.pdf", "pdf", [])[0].text
    found = re.search(r"They\s+grow\s+on\s+bare\s+rock", stored)
    assert found
    result = quote_boxes(path, 1, stored, [found.span()], 2.0)
    span = result["spans"][0]
    assert span["matched"] == 1.0 and span["boxes"]
    document = pdfium.PdfDocument(str(path))
    page = document[0]
    textpage = page.get_textpage()
    try:
        width, height = result["width"], result["height"]
        assert (width > height) == (rotation == 90)  # the render's size follows /Rotate
        under = ""
        for x0, y0, x1, y1 in span["boxes"]:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            xs, ys = [], []
            inset = min(2, (x1 - x0) / 4, (y1 - y0) / 4)  # the box's inside: no neighbour's edge
            for dx, dy in ((x0 + inset, y0 + inset), (x1 - inset, y1 - inset)):
                px, py = ctypes.c_double(), ctypes.c_double()
                raw.FPDF_DeviceToPage(page.raw, 0, 0, width, height, 0, round(dx), round(dy), ctypes.byref(px),
                                      ctypes.byref(py))
                xs.append(px.value)
                ys.append(py.value)
            under += textpage.get_text_bounded(min(xs), min(ys), max(xs), max(ys))
        assert "".join(under.split()) == "Theygrowonbarerock"
    finally:
        textpage.close()
        page.close()
        document.close()
