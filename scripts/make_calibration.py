"""Write the abstention calibration set: held-out SQuAD 2.0 questions against passages shaped
like those `rag ask` reads (issue 27, part D).

Only the articles held out from the shipped reader's training are used (reader.json,
"heldout"."articles"): the reader's scores on the others are overfit. Each article's
paragraphs, in the order of ../shared/data/squad2-dev, are joined into one plain-text
document and cut by rag's own chunker with the default chunk size and overlap, so a chunk
may end inside a paragraph or run into the next one, as in a real file. Every chunk of the
article is then ranked for each question as rag's hybrid search ranks an index: BM25 over
an SQLite FTS5 table with rag's tokenizer and query, cosine with rag's embedder, fused by
rag's convex fusion.

For each question the record holds five passages: its gold chunk (for an answerable
question, the chunk that holds its first gold answer span; for an unanswerable one, the
chunk of its own paragraph) and the 4 best other chunks of the article by fused rank, in
fused order, skipping a chunk that mostly repeats a better one as rag's search does. Each passage says whether it is the gold chunk, where the first gold answer
span starts in it (null when the span is not inside it), whether any gold span lies in it
and whether any gold answer's text occurs in it; the record also gives the gold chunk's
fused rank among all the article's chunks (where real retrieval would have put it).

Articles are split into "fit" (5) and "check" (4), listed below, so a combiner fitted on
one is reported on articles it never saw. Everything is deterministic: no sampling unless
--per-article is given, which samples with SEED.

Usage:
    python scripts/make_calibration.py [OUT]  # default bench/calib.jsonl (gitignored)
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunking import chunk_page  # noqa: E402
from rag.retrieve import convex  # noqa: E402
from rag.text import fts_query  # noqa: E402
from rag.types import Chunk, Page  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"
READER = ROOT / "rag" / "models" / "reader" / "reader.json"
DEFAULT_OUT = ROOT / "bench" / "calib.jsonl"
SEED = 27
OTHERS = 4  # passages besides the gold chunk: `ask` reads the top 5
FIT = ("Amazon_rainforest", "Black_Death", "Economic_inequality", "French_and_Indian_War", "Private_school")
CHECK = ("1973_oil_crisis", "Harvard_University", "Southern_California", "Warsaw")
PARAGRAPH_BREAK = "\n\n"


def heldout_articles() -> list[str]:
    articles = json.loads(READER.read_text(encoding="utf-8"))["heldout"]["articles"]
    if sorted(articles) != sorted(FIT + CHECK):
        raise SystemExit(f"{READER}: held-out articles {articles} are not the FIT + CHECK lists of this script")
    return articles


def article_document(rows: list[dict]) -> tuple[str, dict[str, int]]:
    """The article's paragraphs joined in file order, and where each paragraph starts."""
    starts: dict[str, int] = {}
    parts: list[str] = []
    pos = 0
    for row in rows:
        if row["context"] in starts:
            continue
        starts[row["context"]] = pos
        parts.append(row["context"])
        pos += len(row["context"]) + len(PARAGRAPH_BREAK)
    return PARAGRAPH_BREAK.join(parts), starts


class Article:
    """One article cut into chunks, with a lexical index and the chunks' vectors."""

    def __init__(self, title: str, rows: list[dict], embedder) -> None:
        from rag.config import Settings

        settings = Settings.load({})
        self.title = title
        self.text, self.starts = article_document(rows)
        page = Page(source=title, page=None, text=self.text, kind="text")
        self.chunks: list[Chunk] = chunk_page(page, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO chunks_fts(rowid, heading, text) VALUES (?, ?, ?)",
                            [(i, c.heading, c.text) for i, c in enumerate(self.chunks)])
        self.vectors = embedder.embed([c.embed_text() for c in self.chunks])

    def lexical(self, question: str) -> list[tuple[int, float]]:
        match = fts_query(question)
        if not match:
            return []
        rows = self.db.execute("SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                               "ORDER BY bm25(chunks_fts)", (match,)).fetchall()
        return [(int(i), -float(score)) for i, score in rows]

    def dense(self, qvec) -> list[tuple[int, float]]:
        sims = self.vectors @ qvec
        return sorted(((i, float(s)) for i, s in enumerate(sims)), key=lambda kv: (-kv[1], kv[0]))


def gold_span(row: dict, start: int) -> tuple[int, int] | None:
    """The first gold answer's span in the article text (None for an unanswerable question)."""
    if not row["answers"]:
        return None
    first = row["answers"][0]
    a = start + first["answer_start"]
    return a, a + len(first["text"])


def pick_gold(article: Article, row: dict, fused_rank: dict[int, int]) -> int:
    """The gold chunk: the best-ranked chunk holding the gold span, or for an unanswerable
    question the best-ranked chunk overlapping its paragraph."""
    start = article.starts[row["context"]]
    span = gold_span(row, start)
    lo, hi = span if span else (start, start + len(row["context"]))
    holding = [i for i, c in enumerate(article.chunks)
               if (c.start <= lo and hi <= c.end if span else c.start < hi and lo < c.end)]
    if not holding:  # a span cut by a chunk boundary: the chunk holding most of it
        holding = [max(range(len(article.chunks)),
                       key=lambda i: min(hi, article.chunks[i].end) - max(lo, article.chunks[i].start))]
    return min(holding, key=lambda i: fused_rank.get(i, len(article.chunks)))


def _repeats(a: Chunk, b: Chunk) -> bool:
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > 0.5 * min(a.end - a.start, b.end - b.start)


def passage(article: Article, index: int, row: dict, gold: int, ranks: dict[str, dict[int, int]],
            scores: dict[str, dict[int, float]]) -> dict:
    chunk = article.chunks[index]
    start = article.starts[row["context"]]
    spans = [(start + a["answer_start"], start + a["answer_start"] + len(a["text"])) for a in row["answers"]]
    inside = [chunk.start <= a and b <= chunk.end for a, b in spans]
    for (a, b), ok, gold_answer in zip(spans, inside, row["answers"]):
        assert not ok or chunk.text[a - chunk.start : b - chunk.start] == gold_answer["text"], row["id"]
    return {
        "text": chunk.text,
        "is_gold_chunk": index == gold,
        "answer_start": spans[0][0] - chunk.start if inside and inside[0] else None,
        "has_gold_span": any(inside),
        "answer_text_in_chunk": any(a["text"] in chunk.text for a in row["answers"]),
        "chunk_index": index,
        "start": chunk.start,
        "end": chunk.end,
        "fused_rank": ranks["fused"].get(index),
        "dense_rank": ranks["dense"].get(index),
        "lexical_rank": ranks["lexical"].get(index),
        "similarity": round(scores["dense"][index], 4),
        "bm25": round(scores["lexical"][index], 4) if index in scores["lexical"] else None,
    }


def record(article: Article, row: dict, qvec, split: str) -> dict:
    lists = {"dense": article.dense(qvec), "lexical": article.lexical(row["question"])}
    lists["fused"] = convex([lists["dense"], lists["lexical"]])
    ranks = {name: {i: r for r, (i, _) in enumerate(ranking, start=1)} for name, ranking in lists.items()}
    scores = {name: dict(ranking) for name, ranking in lists.items()}
    gold = pick_gold(article, row, ranks["fused"])
    others: list[int] = []
    for i, _ in lists["fused"]:  # as rag's search does, skip a chunk that mostly repeats a better one
        if len(others) == OTHERS:
            break
        if i != gold and not any(_repeats(article.chunks[j], article.chunks[i]) for j in [gold, *others]):
            others.append(i)
    chosen = sorted([gold, *others], key=lambda i: ranks["fused"].get(i, len(article.chunks) + 1))
    return {
        "id": row["id"],
        "title": article.title,
        "split": split,
        "question": row["question"],
        "is_impossible": row["is_impossible"],
        "answers": [a["text"] for a in row["answers"]],
        "plausible_answers": [a["text"] for a in row.get("plausible_answers") or []],
        "gold_fused_rank": ranks["fused"].get(gold),
        "article_chunks": len(article.chunks),
        "passages": [passage(article, i, row, gold, ranks, scores) for i in chosen],
    }


def build(out: Path, per_article: int | None = None) -> dict[tuple[str, bool], int]:
    """Write the set to `out`; return the count of questions per (split, answerable)."""
    from rag.config import Settings
    from rag.embedders import make_embedder

    embedder = make_embedder(Settings.load({}))
    rows = [json.loads(line) for line in SQUAD.read_text(encoding="utf-8").splitlines() if line.strip()]
    counts: dict[tuple[str, bool], int] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for title in heldout_articles():
            mine = [r for r in rows if r["title"] == title]
            article = Article(title, mine, embedder)
            asked = mine if per_article is None else sorted(
                random.Random(f"{SEED}:{title}").sample(mine, min(per_article, len(mine))), key=mine.index)
            split = "fit" if title in FIT else "check"
            qvecs = embedder.embed([r["question"] for r in asked])
            for row, qvec in zip(asked, qvecs):
                handle.write(json.dumps(record(article, row, qvec, split), ensure_ascii=False) + "\n")
                key = (split, not row["is_impossible"])
                counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-article", type=int, default=None, help=f"sample this many questions per article (seed {SEED})")
    args = parser.parse_args()
    counts = build(args.out, args.per_article)
    for split in ("fit", "check"):
        print(f"{split}: {counts.get((split, True), 0)} answerable, {counts.get((split, False), 0)} unanswerable")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
