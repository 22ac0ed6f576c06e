"""Loading speed per document format, and the peak memory of loading a 200,000-row
spreadsheet.

Speed: a temporary folder gets generated documents of each format (Word reports with
headings, lists and a table; decks of slides with bullets and notes; workbooks of
several sheets; CSV; OpenDocument text, slides and sheets zipped by hand; EPUB books
of several chapters), all from a fixed seed. Each file is loaded with
rag.loaders.load, the checks of rag/loaders/zipped.py included, and the figures are
pages (a document without pages counts as one; a slide's notes are part of its page)
and characters of text per second of loading, median of --repeat runs.

Memory: a child process loads a generated workbook of --rows rows x 8 columns (.xlsx,
and the same rows as .csv) and reads its pages one at a time, as an ingest does,
keeping none, and reports its peak RSS (VmHWM). The reference is a child that only
imports the loaders and openpyxl, so the difference is what the rows cost.

    python bench/office_formats.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402

SEED = 16
WORDS = ("model token vector index chunk query answer source page table sheet slide budget year revenue "
         "cost memory speed layer weight cache prompt context retrieval embedding score rank").split()


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_docx(path: Path, rng: random.Random) -> None:
    import docx

    document = docx.Document()
    for section in range(6):
        document.add_heading(f"Section {section + 1}", 1)
        for _ in range(4):
            document.add_paragraph(" ".join(sentence(rng) for _ in range(4)))
        for _ in range(3):
            document.add_paragraph(sentence(rng, 6), style="List Bullet")
    table = document.add_table(rows=21, cols=4)
    for r in range(21):
        for c in range(4):
            table.cell(r, c).text = f"Column {c}" if r == 0 else rng.choice(WORDS)
    document.save(path)


def make_pptx(path: Path, rng: random.Random) -> None:
    from pptx import Presentation

    deck = Presentation()
    for number in range(20):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number + 1}"
        frame = slide.placeholders[1].text_frame
        frame.text = sentence(rng, 8)
        for _ in range(3):
            frame.add_paragraph().text = sentence(rng, 8)
        slide.notes_slide.notes_text_frame.text = " ".join(sentence(rng) for _ in range(3))
    deck.save(path)


def rows(rng: random.Random, n: int, width: int = 8):
    yield [f"Column {c}" for c in range(width)]
    for i in range(n):
        yield [f"item {i}", i, round(rng.random() * 1000, 2)] + [rng.choice(WORDS) for _ in range(width - 3)]


def make_xlsx(path: Path, rng: random.Random, n_rows: int = 500, sheets: int = 4) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)  # streams rows to disk: the 200k-row book too
    for s in range(sheets):
        sheet = book.create_sheet(f"Sheet {s + 1}")
        for row in rows(rng, n_rows):
            sheet.append(row)
    book.save(path)


def make_csv(path: Path, rng: random.Random, n_rows: int = 2000) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows(rng, n_rows))


ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"')


def write_odf(path: Path, kind: str, body: str) -> None:
    content = f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}><office:body>{body}</office:body></office:document-content>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}")
        zf.writestr("content.xml", content)


def odf_row(cells) -> str:
    return "<table:table-row>" + "".join(f"<table:table-cell><text:p>{c}</text:p></table:table-cell>" for c in cells) + "</table:table-row>"


def make_odt(path: Path, rng: random.Random) -> None:
    parts = []
    for section in range(6):
        parts.append(f'<text:h text:outline-level="1">Section {section + 1}</text:h>')
        parts += [f"<text:p>{' '.join(sentence(rng) for _ in range(4))}</text:p>" for _ in range(4)]
    parts.append("<table:table>" + "".join(odf_row(r) for r in rows(rng, 20, 4)) + "</table:table>")
    write_odf(path, "text", "<office:text>" + "".join(parts) + "</office:text>")


def make_odp(path: Path, rng: random.Random) -> None:
    slides = []
    for number in range(20):
        title = f'<draw:frame presentation:class="title"><draw:text-box><text:p>Slide {number + 1}</text:p></draw:text-box></draw:frame>'
        body = "<draw:frame><draw:text-box>" + "".join(f"<text:p>{sentence(rng, 8)}</text:p>" for _ in range(4)) + "</draw:text-box></draw:frame>"
        notes = f"<presentation:notes><draw:frame><draw:text-box><text:p>{sentence(rng)}</text:p></draw:text-box></draw:frame></presentation:notes>"
        slides.append(f"<draw:page>{title}{body}{notes}</draw:page>")
    write_odf(path, "presentation", "<office:presentation>" + "".join(slides) + "</office:presentation>")


def make_ods(path: Path, rng: random.Random) -> None:
    sheets = "".join(f'<table:table table:name="Sheet {s + 1}">' + "".join(odf_row(r) for r in rows(rng, 500)) + "</table:table>"
                     for s in range(4))
    write_odf(path, "spreadsheet", "<office:spreadsheet>" + sheets + "</office:spreadsheet>")


def make_epub(path: Path, rng: random.Random) -> None:
    chapters = {f"c{i}": f"<html><body><h1>Chapter {i}</h1>" + "".join(f"<p>{' '.join(sentence(rng) for _ in range(5))}</p>" for _ in range(12))
                + "</body></html>" for i in range(1, 11)}
    opf = ('<package xmlns="http://www.idpf.org/2007/opf"><manifest>'
           + "".join(f'<item id="{k}" href="{k}.xhtml" media-type="application/xhtml+xml"/>' for k in chapters)
           + "</manifest><spine>" + "".join(f'<itemref idref="{k}"/>' for k in chapters) + "</spine></package>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                    '<rootfiles><rootfile full-path="book.opf"/></rootfiles></container>')
        zf.writestr("book.opf", opf)
        for key, html in chapters.items():
            zf.writestr(f"{key}.xhtml", html)


MAKERS = {".docx": make_docx, ".pptx": make_pptx, ".xlsx": make_xlsx, ".csv": make_csv, ".odt": make_odt,
          ".odp": make_odp, ".ods": make_ods, ".epub": make_epub}


def speed(folder: Path, files_per_format: int, repeat: int) -> None:
    from rag.loaders import load

    rng = random.Random(SEED)
    print(f"{'format':7} {'files':>5} {'pages':>6} {'chars':>10} {'seconds':>8} {'pages/s':>9} {'MB text/s':>9}")
    for suffix, make in MAKERS.items():
        paths = [folder / f"doc{i}{suffix}" for i in range(files_per_format)]
        for path in paths:
            make(path, rng)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            loaded = [load(path, path.name)[0] for path in paths]
            times.append(time.perf_counter() - started)
        pages = sum(len({p.page for p in file_pages}) for file_pages in loaded)
        chars = sum(len(p.text) for file_pages in loaded for p in file_pages)
        seconds = statistics.median(times)
        print(f"{suffix:7} {len(paths):5} {pages:6} {chars:10,} {seconds:8.3f} {pages / seconds:9.1f} {chars / seconds / 1e6:9.2f}")


# The child reports its own peak (VmHWM): ru_maxrss from wait4 would also count the
# moments after fork, before exec, when the child is a copy of this larger process.
CHILD = """
import re, sys, time
from pathlib import Path
from rag.loaders import iter_pages
import openpyxl
started, pages, chars, notes = time.perf_counter(), 0, 0, []
if sys.argv[1] != "floor":
    for page in iter_pages(Path(sys.argv[1]), "big", notes):
        pages += 1
        chars += len(page.text)
seconds = time.perf_counter() - started
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(f"{peak / 1024:.1f} {pages} {chars} {seconds:.2f} {len(notes)}")
"""


def child_peak(argument: str) -> tuple[float, list[str]]:
    """Run CHILD on one file ("floor": imports only); its peak RSS in MB and its figures."""
    out = subprocess.run([sys.executable, "-c", CHILD, argument], capture_output=True, text=True, cwd=ROOT, check=True)
    peak, *figures = out.stdout.split()
    return float(peak), figures


def memory(folder: Path, n_rows: int) -> None:
    rng = random.Random(SEED)
    xlsx, csv_path = folder / "big.xlsx", folder / "big.csv"
    started = time.perf_counter()
    make_xlsx(xlsx, rng, n_rows, sheets=1)
    make_csv(csv_path, random.Random(SEED), n_rows)
    print(f"\ngenerated {n_rows:,} rows x 8 columns in {time.perf_counter() - started:.1f} s: "
          f"{xlsx.stat().st_size / 1e6:.1f} MB .xlsx, {csv_path.stat().st_size / 1e6:.1f} MB .csv")
    floor, _ = child_peak("floor")
    print(f"{'child':28} {'peak RSS MB':>11} {'over floor':>10} {'pages':>6} {'chars':>12} {'seconds':>8} {'rows/s':>9}")
    print(f"{'imports only (floor)':28} {floor:11.1f} {0:10.1f}")
    for label, path in [(f"load {n_rows:,}-row .xlsx", xlsx), (f"load {n_rows:,}-row .csv", csv_path)]:
        peak, (pages, chars, seconds, _) = child_peak(str(path))
        print(f"{label:28} {peak:11.1f} {peak - floor:10.1f} {pages:>6} {int(chars):12,} {float(seconds):8.2f} "
              f"{n_rows / float(seconds):9,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the spreadsheet whose memory is measured")
    parser.add_argument("--files", type=int, default=5, help="generated files per format for the speed table")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["speed", "memory"], help="run one of the two parts")
    args = parser.parse_args()
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="rag-office-bench-") as tmp:
        if args.only != "memory":
            speed(Path(tmp), args.files, args.repeat)
        if args.only != "speed":
            memory(Path(tmp), args.rows)


if __name__ == "__main__":
    main()
