"""Reading the passages: today's word-overlap sentence against the answer locator, on
held-out SQuAD 2.0 paragraphs cut into chunks the way `rag ingest` cuts them.

    python bench/reading.py [--questions 600] [--split check] [--seed 27]

Data (../shared/data/squad2-dev, nobody here wrote it): only the 9 articles the packaged
reader was not trained on (rag/models/reader/reader.json, "heldout"), split by article
into "fit" (the first 5 in sorted order: where the locator's weights and the gate were
chosen) and "check" (the other 4: what the README reports). Each paragraph of an article
is one page, chunked by rag's chunker with the default settings; a question reads the
chunks of its own paragraph and the 4 other chunks of its article that share the most
of its words (what a retriever returns beside the right one), cosine from the real
embedder.

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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev" / "questions.jsonl"
OTHERS = 4


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
    """Questions of the split's articles, each with its passages as Hit records."""
    from rag.chunking import chunk_page
    from rag.config import Settings
    from rag.embedders import make_embedder
    from rag.text import content_words
    from rag.types import Hit, Page

    fit, check = heldout_articles()
    wanted = set(fit if split == "fit" else check)
    rows = [json.loads(line) for line in SQUAD.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["title"] in wanted]
    settings = Settings()
    embedder = make_embedder(settings)
    chunks: dict[str, list] = {}  # paragraph -> its chunks
    article_of: dict[str, str] = {}
    for r in rows:
        if r["context"] in chunks:
            continue
        page = Page(f"{r['title']}.txt", None, r["context"], "text")
        chunks[r["context"]] = chunk_page(page, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        article_of[r["context"]] = r["title"]
    texts = [c.text for cs in chunks.values() for c in cs]
    vectors = dict(zip(texts, embedder.embed(texts)))
    random.Random(seed).shuffle(rows)
    rows = rows[:limit] if limit else rows
    qvecs = embedder.embed([r["question"] for r in rows])
    by_article: dict[str, list] = {}
    for context, cs in chunks.items():
        by_article.setdefault(article_of[context], []).extend((context, c) for c in cs)
    out = []
    for r, qv in zip(rows, qvecs):
        words = content_words(r["question"])
        own = [c for c in chunks[r["context"]]]
        rest = [c for ctx, c in by_article[r["title"]] if ctx != r["context"]]
        rest.sort(key=lambda c: -len(words & content_words(c.text)))
        picked = own + rest[:OTHERS]
        hits = [Hit(rank=n, score=1.0, chunk_id=n, source=c.source, page=None, heading="", start=c.start,
                    end=c.end, text=c.text, similarity=float(vectors[c.text] @ qv))
                for n, c in enumerate(picked, start=1)]
        hits.sort(key=lambda h: -(h.similarity or 0.0))
        out.append({"question": r["question"], "answerable": not r["is_impossible"],
                    "answers": [a["text"] for a in r["answers"]], "hits": hits})
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
