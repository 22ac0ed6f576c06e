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
    assert [(p.page, p.text) for p in pages] == [(1, TEXTS[0])]
    assert "rebuilt from the 1 page object(s)" in notes[0]


def test_cut_before_the_object_stream_is_a_clear_failure(tmp_path: Path):
    data = object_stream_pdf(TEXTS)
    with pytest.raises(LoaderError, match="damaged PDF, no page could be read"):
        load(cut(tmp_path, data, data.find(b"/Type /ObjStm") - 20), "cut.pdf")


def test_a_truncated_compressed_object_stream_gives_what_it_holds():
    assert unpack_object_streams(b"garbage") == {}
    data = object_stream_pdf(TEXTS)
    assert sorted(unpack_object_streams(data)) == [1, 2, 3, 4, 5, 6]
