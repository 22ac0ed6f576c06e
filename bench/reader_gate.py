"""What a reader (rag/readers/) does to `rag ask` on the corpus question sets: abstention
and extractive answers with and without it, which of today's checks still add anything
on top of it, reranking, and the reader's cost per question.

For every question of bench/corpus_questions.jsonl and bench/heldout_questions.jsonl it
retrieves as `rag ask` does (top 5, hybrid), reads the 5 passages once, and then scores
each policy on the same evidence (so the whole comparison is one pass of reading):

- today: no reader (names/numbers check, similarity floor, coverage threshold);
- reader: the reader's verdict alone;
- reader + names: the names/numbers check, then the reader (what `--reader` does);
- reader + names + floor: the similarity floor kept too;
- reader + today: all of today's checks and the reader.

Each with the hits in retrieval's order and reordered by the reader (--rerank). Answers
are extractive (no LLM: the abstention decision comes before generation, so it is the
same for every strategy), scored as `rag eval --qa` scores them. Also printed: the
reader's latency for 5 passages (median, p95), and the threshold sweep for information
(the threshold shipped is the reader's own, calibrated on held-out SQuAD articles, not here).

    python bench/reader_gate.py [--reader PATH] [--index-dir DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, ROOT, machine  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag import answer as policy  # noqa: E402
from rag.evaluate import load_qa, score_answers  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.readers import make_reader, read_hits  # noqa: E402
from rag.verify import extract  # noqa: E402

SETS = [ROOT / "bench" / "corpus_questions.jsonl", ROOT / "bench" / "heldout_questions.jsonl"]
POLICIES = ["today", "reader", "reader + names", "reader + names + floor", "reader + today"]


def evidence(index: Index, reader, items: list[dict]) -> tuple[list[dict], list[float]]:
    """Per question: hits and extract in both orders, and the verdict; and the reading times."""
    rows, times = [], []
    for item in items:
        q = item["question"]
        hits = index.search(q, rerank=False)
        idf = index.idf(q)
        t = time.perf_counter()
        read, verdict = read_hits(reader, q, hits, rerank=False)
        times.append((time.perf_counter() - t) * 1000)
        ranked, _ = read_hits(_Cached(reader, read), q, hits, rerank=True)
        rows.append({"hits": read, "quotes": extract(q, read, idf=idf), "ranked": ranked,
                     "ranked_quotes": extract(q, ranked, idf=idf), "verdict": verdict})
    return rows, times


class _Cached:
    """The scores already read, given again (reordering must not read twice)."""

    def __init__(self, reader, read) -> None:
        self.name, self.threshold = reader.name, reader.threshold
        self._scores = {h.text: h.reader_score for h in read}

    def scores(self, question, passages):
        return [self._scores[p] for p in passages]


def decide(name: str, row: dict, quotes, settings: Settings, threshold: float) -> str:
    hits, verdict = row["hits"], replace(row["verdict"], threshold=threshold) if row["verdict"] else None
    today = policy.abstain_reason(hits, quotes, settings)
    if name == "today" or today == "no_hits":
        return today
    below = "not_answered" if verdict.score < verdict.threshold or not quotes.sentences else ""
    if name == "reader":
        return below
    if name == "reader + names":
        return policy.abstain_reason(hits, quotes, settings, verdict)
    if name == "reader + names + floor":
        floor = max(h.similarity or 0.0 for h in hits) < settings.min_score
        return ("missing_terms" if settings.check_terms and quotes.missing else "far" if floor else below)
    return today or below  # reader + today


def score(items, rows, name: str, rerank: bool, settings: Settings, threshold: float) -> dict:
    answers = []
    for item, row in zip(items, rows):
        hits, quotes = (row["ranked"], row["ranked_quotes"]) if rerank else (row["hits"], row["quotes"])
        reason = decide(name, row, quotes, settings, threshold)
        models = {"embedder": "", "llm": ""}
        answer = (policy.abstained(item["question"], hits, quotes, models, reason) if reason
                  else policy.quoted(item["question"], hits, quotes, models))
        answers.append(replace(answer, timings_ms={"total": 0.0}))
    return score_answers(items, answers, "extractive")


def line(label: str, r: dict) -> str:
    return (f"| {label} | {r['accuracy']} | {r['citation_precision']} | {r['abstention_precision']} | "
            f"{r['abstention_recall']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", default="default", help="the reader (default: the packaged one)")
    parser.add_argument("--index-dir", type=Path, default=None, help="an index of corpus/ (default: built in a temp dir)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load({"index_dir": args.index_dir or Path(tmp) / "index", "threads": args.threads,
                                  "reader": args.reader})
        ingest([CORPUS], settings=settings)
        index = Index.open(settings=settings)
        reader = make_reader(settings)
        index.search("warm up")
        reader.scores("warm up", ["warm up"])
        print(f"reader {reader.name} (threshold {reader.threshold}); {machine()}")
        times: list[float] = []
        for path in SETS:
            items = load_qa(path)
            rows, took = evidence(index, reader, items)
            times += took
            n_yes = sum(i["answerable"] for i in items)
            print(f"\n{path.name}: {n_yes} answerable, {len(items) - n_yes} unanswerable (extractive answers)")
            print("| policy | accuracy | citation precision | abstention precision | abstention recall |")
            print("|---|---|---|---|---|")
            for name in POLICIES:
                for rerank in (False, True):
                    if name == "today" and rerank:
                        continue
                    print(line(name + (" + rerank" if rerank else ""), score(items, rows, name, rerank, settings,
                                                                            reader.threshold)))
            sweep = sorted({reader.threshold + d for d in (-2, -1, -0.5, 0, 0.5, 1, 2)})
            print("threshold sweep (reader + names, no rerank): " + "; ".join(
                f"{t:.2f}: acc {r['accuracy']} rec {r['abstention_recall']}"
                for t in sweep for r in [score(items, rows, "reader + names", False, settings, t)]))
            yes = sorted(r["verdict"].score for i, r in zip(items, rows) if i["answerable"] and r["verdict"])
            no = sorted(r["verdict"].score for i, r in zip(items, rows) if not i["answerable"] and r["verdict"])
            print(f"best reader score: answerable median {statistics.median(yes):.2f} (min {yes[0]:.2f}); "
                  f"unanswerable median {statistics.median(no):.2f} (max {no[-1]:.2f})")
        times.sort()
        print(f"\nreader latency for 5 passages ({args.threads} threads): median {statistics.median(times):.0f} ms, "
              f"p95 {times[int(0.95 * (len(times) - 1))]:.0f} ms over {len(times)} questions")


if __name__ == "__main__":
    main()
