"""The answer-kind check (rag/answer_kind.py) on data nobody here wrote: the held-out
SQuAD 2.0 articles (the split of scripts/train_reader.py, seed 15; `--split train` gives
the other articles, the only ones looked at while changing the check).

The check was designed on the failures of bench/corpus_questions.jsonl and
bench/heldout_questions.jsonl, so those sets no longer measure it fairly. Here every
question is paired with its own paragraph (the article title as the heading), which is
the hardest case for it: SQuAD 2.0's unanswerable questions were written against that
very paragraph and usually find a plausible answer of the right kind in it. What this
measures is the price: how many answerable questions it would refuse (target: under 2%
of all answerable questions), and, in passing, how many unanswerable ones it catches; a second
line pairs each question with another paragraph of its article, the case retrieval hands
`ask` most often when the answer is not in the documents.

    python bench/answer_kind.py [--data ../shared/data/squad2-dev/questions.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.answer_kind import expected, stated  # noqa: E402
from rag.types import Hit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"
SEED, HELDOUT_SHARE = 15, 0.25  # as scripts/train_reader.py


def split(rows: list[dict], part: str) -> list[dict]:
    titles = sorted({r["title"] for r in rows})
    held = set(random.Random(SEED).sample(titles, round(len(titles) * HELDOUT_SHARE)))
    return [r for r in rows if (r["title"] in held) == (part == "heldout")]


def passage(text: str, title: str) -> Hit:
    return Hit(rank=1, score=1.0, chunk_id=0, source=title, page=None, heading=title.replace("_", " "),
               start=0, end=len(text), text=text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEV))
    parser.add_argument("--split", choices=["heldout", "train"], default="heldout",
                        help="train: the 26 other articles, the ones to look at when changing the check")
    parser.add_argument("--show", type=int, default=0, help="print this many wrongly refused answerable questions")
    args = parser.parse_args()
    rows = split([json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()], args.split)
    shown = 0
    by_article = defaultdict(list)
    for r in rows:
        by_article[r["title"]].append(r["context"])
    rng = random.Random(SEED)
    count: Counter = Counter()
    for r in rows:
        want = expected(r["question"])
        answerable = not r["is_impossible"]
        count["answerable" if answerable else "unanswerable"] += 1
        if want is None:
            continue
        label = "answerable" if answerable else "unanswerable"
        count[f"checked {label}"] += 1
        count[f"checked {label} {want.kind}"] += 1
        if not stated(r["question"], [passage(r["context"], r["title"])]):
            if answerable and shown < args.show:
                shown += 1
                print(f"refused: {r['question']}  [{r['answers'][0]['text']}] {want}")
            count[f"refused {label}"] += 1
            count[f"refused {label} {want.kind}"] += 1
        others = sorted({c for c in by_article[r["title"]] if c != r["context"]})
        if answerable and others:
            count["checked elsewhere"] += 1
            if not stated(r["question"], [passage(rng.choice(others), r["title"])]):
                count["refused elsewhere"] += 1
    n_a, n_u = count["answerable"], count["unanswerable"]
    ca, cu = count["checked answerable"], count["checked unanswerable"]
    print(f"{args.split} SQuAD 2.0 articles: {n_a} answerable, {n_u} unanswerable questions; the check applies to "
          f"{ca} ({ca / n_a:.0%}) and {cu} ({cu / n_u:.0%}) of them")
    for kind in ("number", "year", "name"):
        a, u = count[f"checked answerable {kind}"], count[f"checked unanswerable {kind}"]
        print(f"  {kind:6}: answerable refused {count[f'refused answerable {kind}']}/{a}, "
              f"unanswerable refused {count[f'refused unanswerable {kind}']}/{u}")
    wrong = count["refused answerable"] / ca if ca else 0.0
    overall = count["refused answerable"] / n_a
    caught = count["refused unanswerable"] / cu if cu else 0.0
    print(f"own paragraph: answerable questions refused {wrong:.1%} of those checked, {overall:.1%} of all "
          f"(target < 2% of all: {'PASS' if overall < 0.02 else 'FAIL'}); unanswerable refused {caught:.1%} of those "
          f"checked")
    ce = count["checked elsewhere"]
    print(f"another paragraph of the same article (the answer is not there): refused "
          f"{count['refused elsewhere'] / ce:.1%} of {ce}")


if __name__ == "__main__":
    main()
