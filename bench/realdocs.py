"""Answers on the real-document question set, per split, with where each wrong answer went wrong.

Builds the folder with scripts/make_realdocs.py when it is missing (bench/realdocs/),
warns about any document whose source is not the version the questions were written on,
ingests it into its own index and asks every question of bench/realdocs_questions.jsonl
as `rag ask` does. For the "tune" and "test" halves (split by document) it prints the
answerable questions answered right, the false refusals, the false answers (unanswerable
questions answered) and the refusal reasons; then, for each wrong answer to an answerable
question, whether the passage holding the answer reached the sources at all (retrieval)
or did and another sentence was shown (reading).

    python bench/realdocs.py [--index-dir DIR] [--reader default] [--llm]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bench.common import machine  # noqa: E402
from make_realdocs import DEFAULT_OUT, QUESTIONS, build, stale  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag.index import Index  # noqa: E402




def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def ask_all(index: Index, items: list[dict], extractive: bool) -> list[dict]:
    rows = []
    for item in items:
        answer = index.ask(item["question"], extractive=extractive)
        gold = [_norm(a) for a in item["answers"]]
        holds = [i for i, h in enumerate(answer.sources, start=1) if any(g in _norm(h.text) for g in gold)]
        rows.append({
            "item": item,
            "refused": not answer.answerable,
            "reason": answer.abstain_reason,
            "right": answer.answerable and any(g in _norm(answer.text) for g in gold),
            "held_by_source": holds[0] if holds else None,
            "answer": " ".join(answer.text.split())[:150],
        })
    return rows


def report(rows: list[dict]) -> None:
    for split in ("tune", "test"):
        mine = [r for r in rows if r["item"]["split"] == split]
        answerable = [r for r in mine if r["item"]["answerable"]]
        lacking = [r for r in mine if not r["item"]["answerable"]]
        print(f"{split}: {sum(r['right'] for r in answerable)}/{len(answerable)} answerable right, "
              f"{sum(r['refused'] for r in answerable)} false refusals; "
              f"{sum(not r['refused'] for r in lacking)}/{len(lacking)} false answers")
    print("refusal reasons:", dict(Counter(r["reason"] for r in rows if r["refused"])))
    wrong = [r for r in rows if r["item"]["answerable"] and not r["right"] and not r["refused"]]
    reading = [r for r in wrong if r["held_by_source"]]
    print(f"wrong answers: {len(wrong)}; answer passage among the sources (reading): {len(reading)}, "
          f"not among them (retrieval): {len(wrong) - len(reading)}")
    for r in wrong:
        where = f"source [{r['held_by_source']}] holds it" if r["held_by_source"] else "no source holds it"
        print(f"  {r['item']['id']} {r['item']['question']} ({where}): {r['answer']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, default=None, help="keep the index here (default: a temporary one)")
    parser.add_argument("--reader", default=None, help="the reader to gate with (default off)")
    parser.add_argument("--llm", action="store_true", help="answer with the LLM (default extractive)")
    args = parser.parse_args()
    if not DEFAULT_OUT.is_dir():
        build(DEFAULT_OUT)
    for name in stale(DEFAULT_OUT):
        print(f"warning: {name} is not the version the questions were written on; figures may not compare")
    items = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"index_dir": args.index_dir or Path(tmp) / "index"}
        if args.reader:
            overrides["reader"] = args.reader
        settings = Settings.load(overrides)
        ingest([DEFAULT_OUT], settings=settings)
        index = Index.open(settings=settings)
        try:
            rows = ask_all(index, items, extractive=not args.llm)
        finally:
            index.close()
    print(f"real-document set: {len(items)} questions, {'LLM' if args.llm else 'extractive'}, "
          f"reader {args.reader or 'off'}; {machine()}")
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
