"""What the sentence checks of the LLM's answer catch and what they drop.

    python bench/sentence_checks.py [--set heldout|realdocs|corpus] [--limit N]

Asks every question of a set with the LLM (the default `grounded` strategy) and labels
each sentence the LLM wrote (the draft's, not the quotes added after it):

- right: it holds a gold answer of an answerable question;
- wrong: it belongs to an answer to an unanswerable question (the documents lack what
  was asked: whatever it claims is not the answer), or to an answer to an answerable
  question none of whose sentences holds a gold answer;
- neither: the other sentences (right answers' framing sentences), left out of both rates.

Prints the share of wrong sentences the checks leave out (caught), the share of right
ones they leave out (dropped), and both per reason. Questions refused before the LLM ran
write no sentence and are counted apart. The labels are a proxy: a "wrong" sentence may
state something true that the documents say, so "caught" is a lower bound on precision
and an upper bound on what the checks really catch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETS = {"heldout": (ROOT / "bench" / "heldout_questions.jsonl", ROOT / "corpus", None),
        "corpus": (ROOT / "bench" / "corpus_questions.jsonl", ROOT / "corpus", None),
        "realdocs": (ROOT / "bench" / "realdocs_questions.jsonl", ROOT / "bench" / "realdocs", "test")}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def label(answer, item: dict) -> list[tuple[str, str]]:
    """(label, reason) for each sentence the LLM wrote."""
    from rag.citations import strip_citations

    draft = _norm(strip_citations(answer.draft or ""))
    drafted = [s for s in answer.sentences if _norm(s.text) in draft]  # not the quotes added after it
    gold = [_norm(a) for a in item.get("answers", [])]
    holds = [any(g in _norm(s.text) for g in gold) for s in drafted]
    out = []
    for s, has in zip(drafted, holds):
        if not item["answerable"] or not any(holds):
            out.append(("wrong", s.reason or ""))
        else:
            out.append(("right" if has else "neither", s.reason or ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="heldout")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--index-dir", type=Path, default=None, help="an index of the set's documents to reuse")
    args = parser.parse_args()
    from rag import Index, ingest
    from rag.config import Settings

    questions, docs, split = SETS[args.set]
    items = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [i for i in items if split is None or i.get("split") == split][: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=args.index_dir or Path(tmp) / "index")
        if args.index_dir is None:
            ingest([docs], settings=settings)
        index = Index.open(settings=settings)
        labels: list[tuple[str, str]] = []
        refused = 0
        for item in items:
            answer = index.ask(item["question"])
            if not answer.draft:
                refused += 1
                continue
            labels += label(answer, item)
        index.close()
    counts = Counter(lab for lab, _ in labels)
    left = Counter(lab for lab, why in labels if why)
    print(f"{args.set}: {len(items)} questions, {refused} refused before the LLM, {len(labels)} LLM sentences "
          f"({counts['right']} right, {counts['wrong']} wrong, {counts['neither']} neither)")
    print(f"wrong sentences left out (caught): {left['wrong']}/{counts['wrong']} = "
          f"{left['wrong'] / max(1, counts['wrong']):.2f}")
    print(f"right sentences left out (dropped): {left['right']}/{counts['right']} = "
          f"{left['right'] / max(1, counts['right']):.2f}")
    by = Counter((lab, why) for lab, why in labels if why)
    for (lab, why), n in sorted(by.items()):
        print(f"  {why:<12} {lab:<8} {n}")


if __name__ == "__main__":
    main()
