"""Build the Office documents of the sample corpus with the libraries that read them.

Writes ``corpus/embedding-models.docx`` (headings, a list and a table),
``corpus/quantization.pptx`` (slides with bullets, a table and speaker notes) and
``corpus/model-memory.xlsx`` (three sheets of figures). Document properties and the
zip entries' dates are fixed, so repeated runs produce identical files (and an
unchanged corpus stays unchanged for `rag ingest`).

Usage: python scripts/make_corpus_office.py
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
FIXED_DATE = dt.datetime(2024, 1, 1)

EMBEDDING_MODELS = [
    ["Model", "Dimensions", "Maximum input", "Parameters", "Where it runs"],
    ["all-MiniLM-L6-v2", "384", "256 word pieces", "22 million", "locally, CPU is enough"],
    ["all-mpnet-base-v2", "768", "384 word pieces", "110 million", "locally"],
    ["bge-small-en-v1.5", "384", "512 tokens", "33 million", "locally"],
    ["e5-large-v2", "1024", "512 tokens", "335 million", "locally, a GPU helps"],
    ["text-embedding-3-small", "1536", "8191 tokens", "not published", "OpenAI API"],
    ["text-embedding-3-large", "3072", "8191 tokens", "not published", "OpenAI API"],
]


def build_docx(target: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.created = document.core_properties.modified = FIXED_DATE
    document.core_properties.author = "rag sample corpus"
    document.add_heading("Choosing an embedding model", 1)
    document.add_paragraph(
        "The embedding model decides what a retrieval system considers similar. It turns every chunk "
        "and every question into a vector, and the index only ever compares those vectors, so a poor "
        "model cannot be rescued by a clever index. The choice is a trade-off between quality, vector "
        "size, how much text the model reads at once, and where it has to run.")
    document.add_heading("What to compare", 2)
    for point in [
        "Dimensions: the length of each vector. The index grows linearly with it, and so does the "
        "time of an exact search.",
        "Maximum input: text past this length is cut off before embedding, so chunks should stay "
        "below it.",
        "Parameters: a rough guide to speed; a model with ten times the parameters embeds roughly "
        "ten times slower on the same hardware.",
        "Where it runs: a hosted model sends every document to a third party, a local one keeps "
        "them on the machine.",
    ]:
        document.add_paragraph(point, style="List Bullet")
    document.add_heading("Common models", 2)
    document.add_paragraph("Published figures for some widely used sentence embedding models:")
    table = document.add_table(rows=len(EMBEDDING_MODELS), cols=len(EMBEDDING_MODELS[0]))
    table.style = "Table Grid"
    for r, row in enumerate(EMBEDDING_MODELS):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Recommendation", 2)
    document.add_paragraph(
        "Start with a small local model such as all-MiniLM-L6-v2 and measure retrieval on your own "
        "questions before paying for a larger one. Vectors from different models cannot be mixed: "
        "changing the model means embedding the whole collection again.")
    document.save(target)


SLIDES = [
    ("Quantization for local inference", ["Running language models in less memory"],
     "Quantization stores the weights of a model with fewer bits than it was trained with. It is "
     "what lets a model with billions of parameters run on a laptop."),
    ("Why quantize", ["Memory: the weights must fit in RAM or VRAM", "Speed: fewer bytes to read for every token",
                      "Cost: cheaper hardware serves the same model"],
     "Generating a token on a CPU is limited by memory bandwidth rather than arithmetic: every new "
     "token reads each weight once, so halving the bytes per weight roughly doubles the speed."),
    ("Number formats", None,
     "bfloat16 has 8 exponent bits, the same as float32, so it covers the same range of values and "
     "rarely overflows during training; it pays for that with only 7 mantissa bits of precision."),
    ("GGUF quantization types", ["Q8_0: 8-bit integers in blocks of 32 weights",
                                 "Q5_K_M and Q4_K_M: k-quants with scales shared by super-blocks",
                                 "Lower bits per weight, higher perplexity"],
     "Q8_0 stores each block of 32 weights as 8-bit integers plus one 16-bit scale, which comes to "
     "8.5 bits per weight. Its output is very close to that of the 16-bit model."),
    ("What quality costs", ["Measure on your own task, not only on perplexity",
                            "Small models suffer more from low bit widths than large ones"],
     "A 4-bit version of a large model usually beats an 8-bit version of a model half its size "
     "that needs the same memory."),
]
FORMATS = [["Format", "Total bits", "Exponent bits", "Mantissa bits"], ["float32", "32", "8", "23"],
           ["float16", "16", "5", "10"], ["bfloat16", "16", "8", "7"], ["int8", "8", "none", "none"]]


def build_pptx(target: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.created = deck.core_properties.modified = FIXED_DATE
    deck.core_properties.author = "rag sample corpus"
    for title, bullets, notes in SLIDES:
        if bullets is None:
            slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
            shape = slide.shapes.add_table(len(FORMATS), len(FORMATS[0]), Inches(0.8), Inches(1.8),
                                           Inches(8.4), Inches(2.5))
            for r, row in enumerate(FORMATS):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
        else:
            slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
            frame = slide.placeholders[1].text_frame
            frame.text = bullets[0]
            for bullet in bullets[1:]:
                frame.add_paragraph().text = bullet
        slide.shapes.title.text = title
        slide.notes_slide.notes_text_frame.text = notes
    deck.save(target)


# Weights take parameters x bytes per parameter; 1 GB = 10^9 bytes here.
SIZES = [1, 3, 7, 13, 70]
TRAINING = [("16-bit weights", 2), ("16-bit gradients", 2), ("32-bit master weights", 4),
            ("Adam moment estimates", 8)]


def build_xlsx(target: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.properties.created = book.properties.modified = FIXED_DATE
    book.properties.creator = "rag sample corpus"
    weights = book.active
    weights.title = "Weights"
    weights.append(["Model size (billion parameters)", "float32 (GB)", "float16 (GB)", "8-bit (GB)", "4-bit (GB)"])
    for size in SIZES:
        weights.append([size, size * 4, size * 2, size, size / 2])
    training = book.create_sheet("Training")
    training.append(["Memory for full fine-tuning with Adam in mixed precision, per parameter"])
    training.append(["Item", "Bytes per parameter"])
    for item, n in TRAINING:
        training.append([item, n])
    training.append(["Total", sum(n for _, n in TRAINING)])
    speed = book.create_sheet("Generation speed")
    speed.append(["Each generated token reads every weight once, so memory bandwidth divided by the size of "
                  "the weights bounds the tokens per second"])
    speed.append(["Hardware", "Memory bandwidth (GB/s)", "7B model at 4-bit, at most (tokens/s)"])
    for hardware, bandwidth in [("Laptop, dual-channel DDR4-3200", 51.2), ("Desktop, dual-channel DDR5-5600", 89.6),
                                ("Apple M2 Max", 400), ("NVIDIA RTX 4090", 1008)]:
        speed.append([hardware, bandwidth, bandwidth / 3.5])
        speed.cell(speed.max_row, 3).number_format = "0"
    book.save(target)


def fix_zip_dates(path: Path) -> None:
    """Rewrite the package with every entry dated FIXED_DATE, and the document's modified
    date too (openpyxl stamps the time of saving whatever the properties say)."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    stamp = FIXED_DATE.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    members = [(info, re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
                if info.filename == "docProps/core.xml" else data) for info, data in members]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(fixed, data)


def main() -> None:
    for name, build in [("embedding-models.docx", build_docx), ("quantization.pptx", build_pptx),
                        ("model-memory.xlsx", build_xlsx)]:
        target = CORPUS_DIR / name
        build(target)
        fix_zip_dates(target)
        print(f"wrote {target.relative_to(CORPUS_DIR.parent)}")


if __name__ == "__main__":
    main()
