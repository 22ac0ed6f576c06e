"""`rag reindex` against a full re-ingest of the same PDF-heavy folder, both moving an
fp32 index to the int8 embedder.

The folder: corpus/ (16 files: 2 PDFs, a scanned PNG, office files, text), the messy
PDFs of ../shared/data/pdfs, --text-pdfs PDFs written with fpdf2 (3 pages of SciFact
abstracts each) and --scanned-pdfs scanned-looking ones (a page of abstract text drawn
into an image, which only OCR can read). It is ingested once with fp32 (not timed) and
the index copied. Then, as subprocesses (wall time: start-up and model load included
in both), with no embedding cache (RAG_EMBED_CACHE=0: both embed every chunk):

    reference   rag ingest FOLDER --rebuild --embed-variant int8   (reads, parses, OCRs, embeds)
    measured    rag reindex --embed-variant int8                   (embeds the stored texts)

Target: reindex at least 3x faster. Both indexes must end with the same chunks. The
gain is the share of ingest spent reading, parsing and OCRing (reindex embeds every chunk
as ingest does), so it grows with the number of scanned pages.

    python bench/reindex.py [--text-pdfs 30] [--scanned-pdfs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, ROOT, machine  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TARGET = 3.0


def abstracts(n: int) -> list[str]:
    out = []
    with open(SHARED / "scifact-train" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            out.append(f"{doc['title']}\n\n{doc['text']}".encode("latin-1", "replace").decode("latin-1"))
            if len(out) >= n:
                break
    return out


def write_pdfs(folder: Path, text_pdfs: int, scanned_pdfs: int) -> None:
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    texts = abstracts(text_pdfs * 6 + scanned_pdfs)
    for i in range(text_pdfs):
        pdf = FPDF()
        pdf.set_font("Helvetica", size=11)
        for page in range(3):
            pdf.add_page()
            pdf.multi_cell(0, 6, "\n\n".join(texts[i * 6 + page * 2: i * 6 + page * 2 + 2]))
        pdf.output(str(folder / f"paper-{i:03d}.pdf"))
    font = ImageFont.load_default(size=22)
    for i in range(scanned_pdfs):
        image = Image.new("L", (1240, 1754), 255)
        draw, y, line = ImageDraw.Draw(image), 80, ""
        for word in texts[text_pdfs * 6 + i].split():
            if draw.textlength(line + " " + word, font=font) > 1080:
                draw.text((80, y), line, fill=0, font=font)
                y, line = y + 34, word
            else:
                line = f"{line} {word}".strip()
        draw.text((80, y), line, fill=0, font=font)
        png = folder / f".scan-{i}.png"
        image.save(png)
        pdf = FPDF()
        pdf.add_page()
        pdf.image(str(png), x=0, y=0, w=210)
        pdf.output(str(folder / f"scan-{i:02d}.pdf"))
        png.unlink()


def rag(*args: str) -> tuple[float, dict]:
    env = {**os.environ, "RAG_EMBED_CACHE": "0", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag.cli", *args, "--json", "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 3):  # 3: some file failed (the corrupted PDF), the rest went in
        raise SystemExit(f"rag {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-pdfs", type=int, default=30)
    parser.add_argument("--scanned-pdfs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-reindex-") as tmp:
        base = Path(tmp)
        docs = base / "docs"
        shutil.copytree(CORPUS, docs / "corpus")
        shutil.copytree(SHARED / "pdfs", docs / "pdfs")
        (docs / "generated").mkdir()
        write_pdfs(docs / "generated", args.text_pdfs, args.scanned_pdfs)
        pdfs = len(list(docs.rglob("*.pdf")))
        print(f"reindex vs full re-ingest; {machine()}; {sum(1 for p in docs.rglob('*') if p.is_file())} files, "
              f"{pdfs} PDFs ({args.scanned_pdfs} scanned)")
        a, b = base / "a", base / "b"
        setup, built = rag("ingest", str(docs), "--index-dir", str(a), "--embed-variant", "fp32")
        print(f"  fp32 index: {built['chunks']} chunks of {built['files']} files ({setup:.1f} s, not part of the ratio)")
        shutil.copytree(a, b)
        t_ingest, ingested = rag("ingest", str(docs), "--rebuild", "--index-dir", str(b), "--embed-variant", "int8")
        t_reindex, reindexed = rag("reindex", "--index-dir", str(a), "--embed-variant", "int8")
        assert reindexed["changed"] and reindexed["chunks"] == built["chunks"], reindexed
        assert ingested["chunks"] == reindexed["chunks"], (ingested["chunks"], reindexed["chunks"])
        ratio = t_ingest / t_reindex
        print(f"  rag ingest --rebuild (int8): {t_ingest:7.1f} s   (reference)")
        print(f"  rag reindex          (int8): {t_reindex:7.1f} s   {reindexed['chunks']} chunks re-embedded")
        print(f"reindex is {ratio:.2f}x faster than a full re-ingest (target >= {TARGET:.0f}x: "
              f"{'met' if ratio >= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
