"""A fixed subset of SciFact train for `rag eval` when the full set is too slow to embed.

The first QUERIES queries of queries.jsonl that have judgements, every abstract judged
for them, and the first abstracts of corpus.jsonl (in file order) up to DOCS in all:
the same subset every time, with most of it distractors. The full set (809 queries,
5,183 abstracts) is the reference when the CPU allows it.

    python bench/scifact_subset.py OUT [--queries 300] [--docs 1500]
    rag eval OUT --index-dir TMP/fp32 --mode dense
    RAG_EMBED_VARIANT=int8 rag eval OUT --index-dir TMP/int8 --mode dense
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"


def subset(out: Path, n_queries: int, n_docs: int, source: Path = SCIFACT) -> tuple[int, int]:
    """Write the subset to `out` (BEIR layout); returns (queries, documents)."""
    rows = [line.split("\t") for line in (source / "qrels" / "train.tsv").read_text().splitlines()[1:] if line]
    judged: dict[str, list[str]] = {}
    for qid, cid, _ in rows:
        judged.setdefault(qid, []).append(cid)
    queries = [q for q in map(json.loads, (source / "queries.jsonl").read_text().splitlines()) if q["_id"] in judged]
    queries = queries[:n_queries]
    keep = {cid for q in queries for cid in judged[q["_id"]]}
    docs = list(map(json.loads, (source / "corpus.jsonl").read_text().splitlines()))
    for doc in docs:
        if len(keep) >= n_docs:
            break
        keep.add(doc["_id"])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep))
    wanted = {q["_id"] for q in queries}
    lines = ["query-id\tcorpus-id\tscore"] + ["\t".join(r) for r in rows if r[0] in wanted]
    (out / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    return len(queries), sum(1 for d in docs if d["_id"] in keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--docs", type=int, default=1500)
    args = parser.parse_args()
    q, d = subset(args.out, args.queries, args.docs)
    print(f"{args.out}: {q} queries, {d} abstracts")


if __name__ == "__main__":
    main()
