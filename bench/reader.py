"""Answerability figures and latency of the shipped reader (rag/models/reader/).

Runs the ONNX reader on every question of the held-out SQuAD 2.0 articles (the ones
listed in reader.json, never trained on) and prints: ROC AUC of the answerability
score, accuracy at the shipped threshold, the precision and recall of "unanswerable"
at a range of thresholds, and the latency per (question, passage) pair, one pair at a
time and one question with 5 passages (what `rag ask` reads). The reader is the query
path's own (rag.readers.onnx.OnnxReader): onnxruntime, tokenizers and numpy.

    python bench/reader.py [--model DIR] [--onnx FILE] [--limit N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, machine  # noqa: E402
from rag.readers.onnx import OnnxReader  # noqa: E402

MODEL = ROOT / "rag" / "models" / "reader"
SQUAD_DEV = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"
THRESHOLDS = [-4.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0]


def score_rows(reader: OnnxReader, rows: list[dict]) -> list[float]:
    """The answerability logit of each (question, context) row."""
    return reader.score_pairs([(r["question"], r["context"]) for r in rows])


def roc_auc(scores: list[float], labels: list[int]) -> float:
    s = np.asarray(scores)
    y = np.asarray(labels)
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # ties share their mean rank
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def unanswerable_pr(scores: list[float], labels: list[int], threshold: float) -> tuple[float, float, float]:
    """Precision and recall of the verdict "unanswerable" (score <= threshold), and accuracy."""
    s, y = np.asarray(scores), np.asarray(labels)
    said_no = s <= threshold
    truly_no = y == 0
    tp = int((said_no & truly_no).sum())
    precision = tp / said_no.sum() if said_no.any() else float("nan")
    recall = tp / truly_no.sum()
    return precision, recall, float(((s > threshold) == (y == 1)).mean())


def latency(reader: OnnxReader, rows: list[dict], pairs: int = 100) -> tuple[float, float, float]:
    """Median and mean ms for one (question, passage) pair, tokenising included, and the
    median for one question with 5 passages (what `rag ask` reads)."""
    sample = rows[:: max(1, len(rows) // pairs)][:pairs]
    reader.scores(sample[0]["question"], [sample[0]["context"]])  # warm-up
    one = []
    for r in sample:
        t = time.perf_counter()
        reader.scores(r["question"], [r["context"]])
        one.append(time.perf_counter() - t)
    five = []
    for i in range(0, len(sample) - 4, 5):
        t = time.perf_counter()
        reader.scores(sample[i]["question"], [r["context"] for r in sample[i:i + 5]])
        five.append(time.perf_counter() - t)
    return statistics.median(one) * 1e3, statistics.mean(one) * 1e3, statistics.median(five) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL, help="folder with model.onnx, tokenizer.json, reader.json")
    parser.add_argument("--onnx", type=Path, default=None,
                        help="another ONNX file with the same inputs and outputs, beside its reader.json and tokenizer.json")
    parser.add_argument("--limit", type=int, default=0, help="score a seeded sample of N held-out questions (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    meta = json.loads((args.model / "reader.json").read_text(encoding="utf-8"))
    onnx_path = args.onnx or args.model / "model.onnx"
    held = set(meta["heldout"]["articles"])
    with open(SQUAD_DEV, encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["title"] in held]
    if args.limit:  # the same seeded sample as scripts/train_reader.py export --limit
        keep = set(random.Random(meta["seed"]).sample(range(len(rows)), min(args.limit, len(rows))))
        rows = [r for k, r in enumerate(rows) if k in keep]
    labels = [0 if r["is_impossible"] else 1 for r in rows]
    print(f"{onnx_path.relative_to(ROOT) if onnx_path.is_relative_to(ROOT) else onnx_path} "
          f"({onnx_path.stat().st_size / 1e6:.1f} MB); {len(held)} held-out articles, {len(rows)} questions "
          f"({labels.count(0)} unanswerable); {machine()}")
    # the query path's own reader (`onnx_path`: a folder, or an .onnx file beside reader.json and tokenizer.json)
    reader = OnnxReader(onnx_path, args.threads or None)
    t = time.perf_counter()
    scores = score_rows(reader, rows)
    elapsed = time.perf_counter() - t
    threshold = meta["threshold"]
    _, _, acc = unanswerable_pr(scores, labels, threshold)
    print(f"ROC AUC {roc_auc(scores, labels):.4f}; accuracy {acc:.4f} at the shipped threshold {threshold}; "
          f"majority class {max(labels.count(0), labels.count(1)) / len(labels):.4f}; "
          f"scored in {elapsed:.0f} s (batches of 32)")
    print("| threshold | unanswerable precision | unanswerable recall | accuracy |")
    print("|---|---|---|---|")
    for th in sorted(set(THRESHOLDS + [threshold])):
        p, r, a = unanswerable_pr(scores, labels, th)
        mark = " (shipped)" if th == threshold else ""
        print(f"| {th:g}{mark} | {p:.3f} | {r:.3f} | {a:.3f} |")
    one_med, one_mean, five = latency(reader, rows)
    print(f"latency ({args.threads} threads): {one_med:.1f} ms per pair (median; mean {one_mean:.1f}), "
          f"{five:.1f} ms per batch of 5 pairs (median)")


if __name__ == "__main__":
    main()
