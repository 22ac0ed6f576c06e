"""Build the scanned page of the sample corpus, and render scans for the OCR benchmark.

`render_scan` draws a text with Pillow's own TrueType font (it ships inside Pillow, so
every machine has it), then treats the page as a scanner would: a turn, a little
skew, speckle noise and a grey, uneven background. `corpus/scanned-note.png` is a
short lab note drawn this way with a fixed seed, so repeated runs give the same file.

Usage: python scripts/make_corpus_scan.py
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"

NOTE_TITLE = "Lab note: reranking retrieved passages"
NOTE = (
    "A cross-encoder reads the question and one passage together and scores how well the passage "
    "answers it. It is more accurate than comparing two separate embeddings, but it has to run once "
    "for every candidate, so it cannot search a whole collection by itself.\n"
    "The usual design has two stages. A fast retriever, dense or BM25, returns the top 50 candidates, "
    "and the cross-encoder reorders them so that only the best five reach the language model. "
    "Reranking costs time on every question, so measure recall before and after adding it."
)


def render_scan(
    text: str, *, width: int = 1000, size: int = 26, angle: float = 0.0, noise: float = 0.0, seed: int = 0,
    title: str = "",
) -> Any:
    """A greyscale page image of `text` (paragraphs split on newlines), turned `angle`
    degrees counter-clockwise, with `noise` (0-1) of speckle and background grain."""
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed)
    font = ImageFont.load_default(size=size)
    bold = ImageFont.load_default(size=round(size * 1.25))
    margin, leading = size * 2, round(size * 1.5)
    columns = max(20, int((width - 2 * margin) / (size * 0.5)))
    lines: list[tuple[str, Any]] = [(title, bold), ("", font)] if title else []
    for paragraph in text.split("\n"):
        lines.extend((line, font) for line in textwrap.wrap(paragraph, columns))
        lines.append(("", font))
    height = 2 * margin + leading * len(lines)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for n, (line, face) in enumerate(lines):
        draw.text((margin, margin + n * leading), line, font=face, fill=20)
    if angle:
        page = page.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if noise:
        page = _grain(page, noise, rng)
    return page


def _grain(page: Any, noise: float, rng: random.Random) -> Any:
    """A scanner's marks: the paper greyed unevenly and a sprinkling of dark and light specks."""
    from PIL import Image

    pixels = page.load()
    width, height = page.size
    shade = int(40 * noise)
    for _ in range(int(width * height * 0.02 * noise)):
        x, y = rng.randrange(width), rng.randrange(height)
        pixels[x, y] = rng.choice((0, 60, 255))
    paper = Image.linear_gradient("L").resize((width, height)).point(lambda v: 255 - shade * v // 255)
    return Image.composite(page, paper, page.point(lambda v: 255 if v < 200 else 0))


def main() -> None:
    CORPUS_DIR.mkdir(exist_ok=True)
    page = render_scan(NOTE, title=NOTE_TITLE, angle=1.5, noise=0.5, seed=7)
    out = CORPUS_DIR / "scanned-note.png"
    page.save(out, optimize=True)
    print(f"wrote {out} ({page.size[0]} x {page.size[1]} pixels)")


if __name__ == "__main__":
    main()
