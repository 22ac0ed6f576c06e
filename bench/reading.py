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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


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


def read_all(items: list[dict]) -> list[float]:
    """Each item read by the packaged reader's span head (kept in the item); the ms each took."""
    from rag.config import Settings
    from rag.readers import make_reader

    reader = make_reader(Settings(reader="default"))
    took = []
    for item in items:
        t = time.perf_counter()
        item["readings"] = tuple(reader.read_spans(item["question"], [h.text for h in item["hits"]]))
        took.append((time.perf_counter() - t) * 1000)
    return sorted(took)


def located_sentences(items: list[dict]) -> dict[str, list[tuple[bool, float]]]:
    """Per method, (the sentence holds a gold answer, span F1) for each answerable item."""
    from rag.answer_locate import locate
    from rag.evaluate import token_f1
    from rag.verify import extract

    lexical_only = {"lexical": 1.0, "span": 0.0, "definition": 0.0, "similarity": 0.0}
    out: dict[str, list[tuple[bool, float]]] = {"today: overlap, as quoted": [], "overlap, one sentence": [],
                                                 "locator without reader": [], "locator": []}
    for item in items:
        if not item["answerable"]:
            continue
        q, hits, gold = item["question"], item["hits"], item["answers"]
        ext = extract(q, hits)
        first = ext.sentences[0].text if ext.sentences else ""
        out["today: overlap, as quoted"].append((contains(first, gold), max(token_f1(first, a) for a in gold)))
        for name, reads, weights in (("overlap, one sentence", None, lexical_only),
                                     ("locator without reader", None, None), ("locator", item["readings"], None)):
            span = locate(q, hits, reads, weights=weights) if weights else locate(q, hits, reads)
            sentence, text = (span.sentence, span.text) if span else ("", "")
            out[name].append((contains(sentence, gold), max(token_f1(text, a) for a in gold)))
    return out


def refusals(items: list[dict]) -> dict[str, tuple[float, float]]:
    """(false-answer rate, false-refusal rate) of today's checks and of the answer gate, the
    names-and-numbers and answer-kind checks first in both, as `ask` decides."""
    from rag import answer as policy
    from rag.answer_gate import Evidence, features, load_gate
    from rag.answer_locate import locate
    from rag.config import Settings
    from rag.types import GateScore
    from rag.verify import extract

    gate, settings = load_gate(), Settings()
    gave: dict[str, list[tuple[bool, bool]]] = {"today's checks": [], "answer gate": []}
    for item in items:
        q, hits, reads = item["question"], item["hits"], item["readings"]
        located = locate(q, hits, reads)
        quotes = extract(q, hits, located=located)
        ev = Evidence(q, tuple(hits), tuple(hits), reads, None, located, quotes, {})
        score = GateScore(gate.probability(features(ev)), gate.threshold)
        for name, verdict in (("today's checks", None), ("answer gate", score)):
            reason = policy.abstain_reason(hits, quotes, settings, None, located, verdict)
            gave[name].append((item["answerable"], not reason))
    out = {}
    for name, rows in gave.items():
        pos = [g for a, g in rows if a]
        neg = [g for a, g in rows if not a]
        out[name] = (sum(neg) / max(1, len(neg)), sum(not g for g in pos) / max(1, len(pos)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=600, help="seeded sample size (0: all)")
    parser.add_argument("--split", choices=("fit", "check"), default="check")
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    if not SQUAD.is_file():
        sys.exit(f"needs {SQUAD} (the team's shared data)")
    t0 = time.perf_counter()
    items = build(args.split, args.questions, args.seed)
    took = read_all(items)
    print(f"{len(items)} questions ({sum(i['answerable'] for i in items)} answerable), {args.split} articles, "
          f"read in {time.perf_counter() - t0:.0f} s")
    print(f"\n{'answer located by':<28} {'answer-sentence acc':>20} {'span F1':>8}   (target acc >= 0.90)")
    for name, rows in located_sentences(items).items():
        n = max(1, len(rows))
        print(f"{name:<28} {sum(a for a, _ in rows) / n:>20.3f} {sum(b for _, b in rows) / n:>8.3f}")
    print(f"\n{'decided by':<28} {'false answers':>14} {'false refusals':>15}   (target both <= 0.10)")
    for name, (fa, fr) in refusals(items).items():
        print(f"{name:<28} {fa:>14.3f} {fr:>15.3f}")
    print(f"\nreading 5 passages with the span head: p50 {took[len(took) // 2]:.0f} ms, "
          f"p95 {took[int(0.95 * (len(took) - 1))]:.0f} ms")


if __name__ == "__main__":
    main()
