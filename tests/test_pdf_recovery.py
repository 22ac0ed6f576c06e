"""Truncated PDFs are recovered as far as their pages can be read, including PDF 1.5
files whose pages sit in compressed object streams indexed by a cross-reference stream
(rag/loaders/pdf.py rebuild_pdf, rag/loaders/pdf_objstm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from made_files import object_stream_pdf

from rag.errors import LoaderError
from rag.loaders import load
from rag.loaders.pdf_objstm import unpack_object_streams

TEXTS = ["Owls hunt at night.", "Barn owls nest in barns.", "Snowy owls live on the tundra."]


def cut(tmp_path: Path, data: bytes, at: int) -> Path:
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[:at])
    return path


def test_the_whole_file_reads_as_written(tmp_path: Path):
    pages, notes = load(cut(tmp_path, object_stream_pdf(TEXTS), 10**9), "cut.pdf")
    assert [p.text for p in pages] == TEXTS and notes == []


def test_cut_before_the_cross_reference_stream_keeps_every_page(tmp_path: Path):
    data = object_stream_pdf(TEXTS)
    pages, notes = load(cut(tmp_path, data, data.find(b"/Type /XRef") - 8), "cut.pdf")
    assert [(p.page, p.text) for p in pages] == list(enumerate(TEXTS, start=1))
    assert notes == ["damaged PDF (Stream has ended unexpectedly): rebuilt from the 3 page object(s) found in it"]


def test_cut_inside_the_object_stream_keeps_the_pages_before_the_cut(tmp_path: Path):
    data = object_stream_pdf(TEXTS)
    start = data.find(b"/Type /ObjStm")
    kept = next(k for k in range(start, len(data)) if 4 in unpack_object_streams(data[:k]))  # page 1's object
    assert 5 not in unpack_object_streams(data[:kept])
    pages, notes = load(cut(tmp_path, data, kept), "cut.pdf")
    assert pages[0].text == TEXTS[0]  # from its own page object; the others from their contents
    assert "rebuilt from the 3 page object(s)" in notes[0]


def test_cut_before_every_page_object_still_reads_the_page_contents(tmp_path: Path):
    """The object stream with all the page objects is lost; the content streams before it
    become pages of their own, in file order, a standard font standing in for theirs."""
    data = object_stream_pdf(TEXTS)
    before = data.rfind(b"endobj", 0, data.find(b"/Type /ObjStm")) + len(b"endobj\n")
    pages, notes = load(cut(tmp_path, data, before), "cut.pdf")
    assert [(p.page, p.text) for p in pages] == list(enumerate(TEXTS, start=1))
    assert "rebuilt from the 3 page object(s)" in notes[0]
    pages, _ = load(cut(tmp_path, data, before - 12), "cut.pdf")  # and cut inside the last content stream
    assert [p.text for p in pages] == TEXTS[:2]


def test_cut_inside_the_first_page_content_is_a_clear_failure(tmp_path: Path):
    data = object_stream_pdf(TEXTS)
    with pytest.raises(LoaderError, match="damaged PDF, no page could be read"):
        load(cut(tmp_path, data, data.find(b"stream\n") + 12), "cut.pdf")


def test_page_contents_join_the_pages_that_survive(tmp_path: Path):
    """Page 1's object survives, pages 2 and 3 only as content streams: all three read,
    page 1's content not twice."""
    data = object_stream_pdf(TEXTS)
    start = data.find(b"/Type /ObjStm")
    kept = next(k for k in range(start, len(data)) if 4 in unpack_object_streams(data[:k]))
    pages, _ = load(cut(tmp_path, data, kept), "cut.pdf")
    assert [p.text for p in pages] == TEXTS


def test_a_truncated_compressed_object_stream_gives_what_it_holds():
    assert unpack_object_streams(b"garbage") == {}
    data = object_stream_pdf(TEXTS)
    assert sorted(unpack_object_streams(data)) == [1, 2, 3, 4, 5, 6]


def test_a_truncated_encrypted_pdf_is_not_rebuilt_into_ciphertext(tmp_path: Path):
    from made_files import encrypted_pdf, pdf_bytes

    data = encrypted_pdf("pw", algorithm="RC4-128", plain=pdf_bytes([[TEXTS[0]], [TEXTS[1]]]))
    with pytest.raises(LoaderError, match="damaged PDF, no page could be read"):
        load(cut(tmp_path, data, data.rfind(b"xref")), "cut.pdf", passwords=["pw"])
