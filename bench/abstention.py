"""Calibrates when `rag ask` abstains, and measures extractive answers on the question set.

For every question of bench/corpus_questions.jsonl it retrieves as `rag ask` does and
records the top-1 similarity and the coverage (the IDF-weighted share of the question's
content words found in the best passage of the sources). It then sweeps the coverage
threshold and prints, for each: extractive answer accuracy on answerable questions,
false abstentions, and correct abstentions on unanswerable ones. The reference row is
the similarity floor alone (no coverage test), measured in the same run.

Because the threshold is chosen on the same questions it is scored on, it also prints a
two-fold figure: the threshold picked on odd-numbered questions, scored on even ones,
and the other way round.

    python bench/abstention.py [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, QUESTIONS, machine, questions  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag.evaluate import score_answers  # noqa: E402
from rag.index import Index  # noqa: E402

THRESHOLDS = [0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7]


def run(index_dir: Path) -> list[tuple[dict, object]]:
    settings = Settings.load({"index_dir": index_dir, "min_coverage": 0.0, "check_terms": False})
    ingest([CORPUS], settings=settings)
    index = Index.open(settings=settings)
    return [(item, index.ask(item["question"], extractive=True)) for item in questions()]


def score(rows, threshold: float, terms: bool = True) -> dict:
    from dataclasses import replace

    from rag.prompt import NOT_FOUND

    answers = [a if (a.coverage >= threshold and not (terms and a.missing)) or not a.answerable
               else replace(a, text=NOT_FOUND, answerable=False, citations=(), strategy="abstain") for _, a in rows]
    return score_answers([i for i, _ in rows], answers, "extractive")


def pick(rows) -> float:
    """The threshold with the best mean of accuracy and abstention recall (the higher on ties)."""
    def key(t: float) -> tuple[float, float]:
        r = score(rows, t)
        return ((r["accuracy"] or 0) + (r["abstention_recall"] or 0), t)
    return max(THRESHOLDS, key=key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--misses", action="store_true", help="List every question answered wrongly on stderr.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.index_dir or Path(tmp) / "index")
    print(f"{QUESTIONS.name}: {sum(i['answerable'] for i, _ in rows)} answerable, "
          f"{sum(not i['answerable'] for i, _ in rows)} unanswerable; {machine()}")
    print("| min coverage | accuracy | abstention precision | abstention recall | citation precision |")
    print("|---|---|---|---|---|")
    ref = score(rows, 0.0, terms=False)
    print(f"| reference: similarity floor only | {ref['accuracy']} | {ref['abstention_precision']} | "
          f"{ref['abstention_recall']} | {ref['citation_precision']} |")
    for t in THRESHOLDS:
        r = score(rows, t)
        label = f"{t:.2f} + names/numbers check"
        print(f"| {label} | {r['accuracy']} | {r['abstention_precision']} | {r['abstention_recall']} | {r['citation_precision']} |")
    odd, even = rows[0::2], rows[1::2]
    t_odd, t_even = pick(odd), pick(even)
    a, b = score(even, t_odd), score(odd, t_even)
    print(f"two-fold: threshold {t_odd} picked on odd questions scores accuracy {a['accuracy']}, "
          f"abstention recall {a['abstention_recall']} on even; {t_even} picked on even scores "
          f"{b['accuracy']} / {b['abstention_recall']} on odd")
    if args.misses:
        for item, ans in rows:
            ok = item["answerable"] and ans.answerable and any(x.lower() in ans.text.lower() for x in item["answers"])
            wanted = "answerable" if item["answerable"] else "unanswerable"
            missing = ",".join(ans.missing) or "-"
            print(f"{item['id']} {wanted} ok={ok} coverage={ans.coverage:.2f} missing={missing}: "
                  f"{item['question'][:60]} -> {ans.text[:90]}", file=sys.stderr)


if __name__ == "__main__":
    main()
