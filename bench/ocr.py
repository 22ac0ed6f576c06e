"""OCR speed and accuracy: pages per second and character error rate of rag's OCR
(rag/loaders/ocr.py) on scans generated here, upright, turned and skewed.

Each page is prose from the sample corpus (a passage of --chars characters from
corpus/*.md, Markdown marks removed) drawn by scripts/make_corpus_scan.render_scan
(Pillow's own font, 1240 px wide like an A4 page at 150 dpi) with a scanner's grain,
then turned or skewed. Each is recognised --repeat times after one warm-up page; the
figures are the median seconds per page (wall clock, and the CPU time of all the
process's threads, which tells a busy machine from a slow engine) and the character error rate (edit distance
over the truth's length, spacing normalised) of the text recognised. One more case
goes through a scanned PDF (the same page saved as an image-only PDF, rendered by
PDFium, through rag.loaders.load), to show what rendering adds.

    python bench/ocr.py [--chars 1200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine  # noqa: E402
from scripts.make_corpus_scan import render_scan  # noqa: E402

CASES = [  # name, turn (degrees counter-clockwise), noise
    ("upright, clean", 0.0, 0.0),
    ("upright, noisy", 0.0, 0.6),
    ("turned 90", 90.0, 0.3),
    ("turned 180", 180.0, 0.3),
    ("turned 270", 270.0, 0.3),
    ("skewed 3 degrees", 3.0, 0.3),
    ("skewed -6 degrees", -6.0, 0.3),
]


def passage(chars: int) -> str:
    """About `chars` characters of corpus prose, paragraphs kept, Markdown marks dropped."""
    source = (ROOT / "corpus" / "retrieval-augmented-generation.md").read_text(encoding="utf-8")
    paragraphs = [p for p in source.split("\n\n") if p.strip() and not p.lstrip().startswith(("#", "-", "|", "`"))]
    out: list[str] = []
    for p in paragraphs:
        out.append(re.sub(r"[*_`\[\]]|\(http[^)]*\)", "", " ".join(p.split())))
        if sum(map(len, out)) >= chars:
            break
    return "\n".join(out)


def cer(found: str, truth: str) -> float:
    a, b = " ".join(found.split()), " ".join(truth.split())
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(b), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1200)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    from rag.loaders import load, ocr

    truth = passage(args.chars)
    started = time.perf_counter()
    ocr.recognise(render_scan("Warm-up page.", width=600))
    print(f"{machine()}\nengine load and first page: {time.perf_counter() - started:.1f} s")
    print(f"page text: {len(truth)} characters\n")
    print(f"{'case':<22} {'s/page':>7} {'pages/s':>8} {'CPU s':>6} {'CER':>7}  turned  skew")
    times: list[float] = []
    cpu: list[float] = []
    errors: list[float] = []
    for name, angle, noise in CASES:
        page = render_scan(truth, width=1240, size=24, angle=angle, noise=noise, seed=3)
        runs, cpu_runs = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = ocr.recognise(page)
            runs.append(time.perf_counter() - start)
            cpu_runs.append(time.process_time() - start_cpu)
        seconds, rate = statistics.median(runs), cer(result.text, truth)
        times.append(seconds)
        cpu.append(statistics.median(cpu_runs))
        errors.append(rate)
        print(f"{name:<22} {seconds:>7.2f} {1 / seconds:>8.3f} {cpu[-1]:>6.1f} {rate:>7.2%}  {result.turned:>6}  "
              f"{result.skew:>4.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        render_scan(truth, width=1240, size=24, noise=0.3, seed=3).save(path, resolution=150)
        start = time.perf_counter()
        pages, _ = load(path, "scan.pdf")
        seconds = time.perf_counter() - start
        rate = cer(pages[0].text if pages else "", truth)
        print(f"{'scanned PDF (load)':<22} {seconds:>7.2f} {1 / seconds:>8.3f} {'':>6} {rate:>7.2%}")
    print(f"\nimages: median {statistics.median(times):.2f} s/page ({1 / statistics.median(times):.3f} pages/s), "
          f"median CPU {statistics.median(cpu):.1f} s/page, mean CER {statistics.mean(errors):.2%}, "
          f"worst {max(errors):.2%}")


if __name__ == "__main__":
    main()
