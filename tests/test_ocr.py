"""OCR of images and scanned PDF pages (rag/loaders/ocr.py, images.py, pdf.py) on scans
generated here with Pillow: upright, turned by 90/180/270 degrees, skewed, noisy.

Recognition is slow on two busy cores (about 2-5 s for each small image here), so the
images are two short lines and each test reads as few as it can.

The character error rate threshold: on these scans RapidOCR's errors measured 0.0-1.5%
(a space lost or a letter doubled at worst; bench/ocr.py prints the figures for larger
pages). 5% leaves room for another onnxruntime build's rounding while still failing a
page read in the wrong order or upside down, which scores 50% and more.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import shared
from fakes import HashEmbedder, settings
from typer.testing import CliRunner

from rag import ingest
from rag.cli import EXIT_FILES_FAILED, app
from rag.errors import LoaderError
from rag.loaders import load
from rag.loaders import ocr as ocr_engine
from rag.loaders.ocr_layout import layout
from rag.types import FileFailure

TEXT = "Chunks are embedded once and stored in the index.\nEach answer cites the page it was taken from."
MAX_CER = 0.05
runner = CliRunner()


def scan(text: str = TEXT, angle: float = 0.0, noise: float = 0.0, size: int = 26):
    """A greyscale image of `text`, one line per line, turned `angle` degrees counter-clockwise."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    lines = text.split("\n")
    page = Image.new("L", (int(size * 0.62 * max(map(len, lines))) + 2 * size, (len(lines) + 1) * size * 3 // 2), 255)
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(lines):
        draw.text((size, size // 2 + n * size * 3 // 2), line, font=font, fill=0)
    if angle:
        page = page.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if noise:
        rng = random.Random(1)
        pixels = page.load()
        for _ in range(int(page.size[0] * page.size[1] * 0.03 * noise)):
            pixels[rng.randrange(page.size[0]), rng.randrange(page.size[1])] = rng.choice((0, 255))
    return page


def cer(found: str, truth: str) -> float:
    """Character error rate: edit distance over the truth's length, spacing normalised."""
    a, b = " ".join(found.split()), " ".join(truth.split())
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(b), 1)


@pytest.mark.parametrize("angle, noise", [(0, 0.6), (90, 0.0), (180, 0.0), (270, 0.0), (4, 0.3), (-3, 0.0)])
def test_turned_skewed_and_noisy_scans_are_read(tmp_path: Path, angle: float, noise: float):
    path = tmp_path / "scan.png"
    scan(angle=angle, noise=noise).save(path)
    pages, notes = load(path, "scan.png")
    assert notes == []
    assert [(p.page, p.ocr, p.kind) for p in pages] == [(1, True, "image")]
    assert cer(pages[0].text, TEXT) <= MAX_CER, pages[0].text


def test_every_frame_of_a_tiff_is_a_page_and_blank_frames_are_noted(tmp_path: Path):
    from PIL import Image

    path = tmp_path / "pages.tiff"
    blank = Image.new("L", (400, 200), 255)
    scan().save(path, save_all=True, append_images=[blank])
    pages, notes = load(path, "pages.tiff")
    assert [(p.page, p.ocr) for p in pages] == [(1, True)]
    assert cer(pages[0].text, TEXT) <= MAX_CER
    assert notes == ["no text found on page(s) 2 (OCR)"]


def test_an_animated_image_is_read_from_its_first_frame(tmp_path: Path):
    from PIL import Image

    path = tmp_path / "moving.webp"
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("white", "grey", "black")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    pages, notes = load(path, "moving.webp")
    assert pages == []
    assert notes == ["animated image: only the first of its 3 frames was read",
                     "no text found in the image (OCR): nothing stored"]


def test_text_on_a_transparent_background_is_read(tmp_path: Path):
    from PIL import Image

    ink = scan("Transparent labels still read")
    clear = Image.new("LA", ink.size, (0, 0))
    clear.putalpha(ink.point(lambda v: 255 - v))  # black text, nothing around it
    path = tmp_path / "label.png"
    clear.save(path)
    pages, _ = load(path, "label.png")
    assert cer(pages[0].text, "Transparent labels still read") <= MAX_CER


def test_an_image_without_text_stores_nothing_and_is_a_warning(tmp_path: Path):
    from PIL import Image

    docs = tmp_path / "docs"
    docs.mkdir()
    Image.new("RGB", (320, 240), "white").save(docs / "blank.jpg")
    (docs / "note.md").write_text("# Note\n\nOwls hunt at night.\n", encoding="utf-8")
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert report.failed == ()
    assert FileFailure("blank.jpg", "no text found in the image (OCR): nothing stored") in report.warnings
    assert set(report.added) == {"blank.jpg", "note.md"}


def test_a_damaged_image_fails_with_its_reason(tmp_path: Path):
    path = tmp_path / "cut.png"
    scan().save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LoaderError, match="damaged image"):
        load(path, "cut.png")
    (tmp_path / "fake.jpg").write_text("not a picture", encoding="utf-8")
    with pytest.raises(LoaderError, match="not an image"):
        load(tmp_path / "fake.jpg", "fake.jpg")


def test_an_image_too_large_to_read_is_refused_before_decoding(tmp_path: Path):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("1", (9000, 9000), 1).save(path)  # 81 megapixels in a file of a few kilobytes
    with pytest.raises(LoaderError, match=r"image too large to read \(9000 x 9000 pixels\)"):
        load(path, "huge.png")


def test_a_scanned_pdf_page_is_recognised_and_never_means_never(tmp_path: Path):
    path = tmp_path / "scanned.pdf"
    scan(angle=270).save(path, resolution=100)  # Pillow writes the image alone: no text layer
    pages, notes = load(path, "scanned.pdf")
    assert [(p.page, p.ocr, p.kind) for p in pages] == [(1, True, "pdf")] and notes == []
    assert cer(pages[0].text, TEXT) <= MAX_CER, pages[0].text
    with pytest.raises(LoaderError) as info:
        load(path, "scanned.pdf", ocr="never")
    assert info.value.reason == "no extractable text (scanned PDF? OCR is off: --ocr never)"


def test_always_recognises_pages_that_have_a_text_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fpdf import FPDF

    pdf = FPDF(format=(360, 120), unit="pt")
    pdf.add_page()
    pdf.set_font("Helvetica", size=18)
    pdf.text(20, 50, "Vectors live in the index.")
    path = tmp_path / "typed.pdf"
    pdf.output(str(path))
    calls: list[object] = []
    real = ocr_engine.recognise
    monkeypatch.setattr(ocr_engine, "recognise", lambda image: calls.append(image) or real(image))
    (auto,), _ = load(path, "typed.pdf")
    assert not auto.ocr and calls == []
    (again,), _ = load(path, "typed.pdf", ocr="always")
    assert again.ocr and len(calls) == 1
    assert cer(again.text, "Vectors live in the index.") <= MAX_CER, again.text


@pytest.mark.shared_data
def test_the_shared_image_only_pdf_goes_through_ocr(monkeypatch: pytest.MonkeyPatch):
    # Its one page is a 16 x 16 pixel smiley face drawn with CCITT fax compression: it is
    # rendered and recognised now, and there is no text in it to find.
    calls: list[object] = []
    real = ocr_engine.recognise
    monkeypatch.setattr(ocr_engine, "recognise", lambda image: calls.append(image) or real(image))
    with pytest.raises(LoaderError) as info:
        load(shared("pdfs", "sf-imagemagick-CCITTFaxDecode.pdf"), "smiley.pdf")
    assert len(calls) == 1 and calls[0].size == (16, 16)  # its 3.84 pt square at 300 dpi
    assert info.value.reason == "no extractable text (blank, or OCR found no text)"


def test_cli_ocr_never_leaves_scans_unread(tmp_path: Path, hash_models: None):
    docs = tmp_path / "docs"
    docs.mkdir()
    scan().save(docs / "scan.png")
    (docs / "note.txt").write_text("Owls hunt at night.\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(docs), "--ocr", "never", "--index-dir", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == EXIT_FILES_FAILED, result.output
    assert '"reason": "an image, and OCR is off (--ocr never)"' in result.stdout
    result = runner.invoke(app, ["ingest", str(docs), "--ocr", "sometimes", "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code != 0 and "ocr (--ocr) must be auto, always or never" in result.stderr


def box(x: float, y: float, w: float, h: float = 20.0):
    import numpy as np

    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=float)


def test_layout_joins_words_into_lines_and_paragraphs():
    boxes = [box(300, 2, 100), box(10, 0, 250), box(10, 30, 300), box(10, 120, 200)]
    assert layout(boxes, ["world", "hello", "next line", "new paragraph"]) == "hello world\nnext line\n\nnew paragraph"


def test_layout_reads_two_columns_one_after_the_other_but_tables_across():
    title = [box(10, 0, 900)]
    left = [box(10, 40 + 30 * n, 420) for n in range(6)]
    right = [box(480, 40 + 30 * n, 430) for n in range(6)]
    texts = ["Title"] + [f"L{n}" for n in range(6)] + [f"R{n}" for n in range(6)]
    assert layout(title + left + right, texts) == "Title\n\n" + "\n".join(texts[1:7]) + "\n\n" + "\n".join(texts[7:])
    cells = [box(x, 30 * n, 80) for n in range(6) for x in (10, 500)]  # a two-column table of short cells
    rows = [f"{side}{n}" for n in range(6) for side in ("name", "value")]
    assert layout(cells, rows) == "\n".join(f"name{n} value{n}" for n in range(6))


def test_pages_to_recognise_lengthen_a_running_time_limit():
    import signal

    from rag.loaders import _time_limit

    with _time_limit(5.0):
        ocr_engine.allow_time(2)
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    assert 4.0 + 2 * ocr_engine.SECONDS_PER_PAGE < remaining <= 5.0 + 2 * ocr_engine.SECONDS_PER_PAGE
    ocr_engine.allow_time(3)  # no limit running: none is started
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
