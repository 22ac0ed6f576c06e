"""The eval verb: retrieval metrics on BEIR-format data (`evaluate`) and answer quality
on a question set (`evaluate_qa`), with the metrics, loading and scoring they use.

A BEIR folder holds corpus.jsonl (`_id`, `title`, `text`), queries.jsonl (`_id`,
`text`) and qrels/<split>.tsv (query-id, corpus-id, score). The corpus is written out
as one text file per document (title, blank line, text) into a cache folder and
ingested like any folder, so a second run re-embeds nothing. A document's score is its
best chunk's: documents are ranked by the first appearance of any of their chunks.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import quote, unquote

from .config import Settings, settings_for
from .errors import RagError
from .types import Progress

if TYPE_CHECKING:
    from .embedders import Embedder
    from .index import Index

ProgressFn = Callable[[Progress], None]

METRIC_KEYS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG with linear gain (rel / log2(rank + 1)), as trec_eval and BEIR compute it."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {d for d, r in relevant.items() if r > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k], start=1):
        if relevant.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


@dataclass(frozen=True)
class EvalResult:
    metrics: dict[str, float]
    queries: int
    latency_ms: dict[str, float]
    mode: str
    split: str
    reader: str | None = None  # the reader that reordered the hits (None: no reranking)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: round(v, 4) for k, v in self.metrics.items()}
        out.update(queries=self.queries, latency_ms={k: round(v, 2) for k, v in self.latency_ms.items()},
                   mode=self.mode, split=self.split, rerank=self.reader is not None, reader=self.reader)
        return out


def pick_split(folder: Path, split: str | None) -> str:
    qrels = folder / "qrels"
    splits = sorted(p.stem for p in qrels.glob("*.tsv")) if qrels.is_dir() else []
    if not splits:
        raise RagError(f"{qrels} has no <split>.tsv file; is {folder} a BEIR-format folder?")
    if split is None:
        return "test" if "test" in splits else splits[0] if len(splits) == 1 else _ambiguous(folder, splits)
    if split not in splits:
        raise RagError(f"split {split!r} not found in {qrels} (have: {', '.join(splits)})")
    return split


def _ambiguous(folder: Path, splits: list[str]) -> str:
    raise RagError(f"{folder} has several splits ({', '.join(splits)}) and no test split; pass --split")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise RagError(f"{path} is missing; a BEIR folder has corpus.jsonl, queries.jsonl and qrels/")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RagError(f"{path}:{n}: not JSON ({exc.msg})") from None


def load_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / f"{split}.tsv"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) < 3 or (n == 1 and not parts[2].strip().lstrip("-").isdigit()):
            continue  # the header, or a blank line
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load_queries(folder: Path, wanted: set[str]) -> dict[str, str]:
    return {str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl") if str(q["_id"]) in wanted}


def doc_file(doc_id: str) -> str:
    return quote(doc_id, safe="") + ".txt"


def doc_id(source: str) -> str:
    return unquote(source[:-4] if source.endswith(".txt") else source)


def materialize(folder: Path, docs_dir: Path) -> int:
    """Write each corpus document to docs_dir/<id>.txt (only what differs); returns the count."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for doc in _jsonl(folder / "corpus.jsonl"):
        title, text = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
        body = f"{title}\n\n{text}\n" if title else f"{text}\n"
        path = docs_dir / doc_file(str(doc["_id"]))
        if not path.is_file() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
        count += 1
    return count


def run_queries(
    search: Callable[[str, int], list[Any]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    mode: str,
    split: str,
    depth: int = 300,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Rank documents for every query with `search(text, k) -> hits` and score them."""
    sums = dict.fromkeys(METRIC_KEYS, 0.0)
    latencies: list[float] = []
    for n, (qid, text) in enumerate(queries.items(), start=1):
        started = time.perf_counter()
        hits = search(text, depth)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = list(dict.fromkeys(doc_id(h.source) for h in hits))
        rel = qrels[qid]
        sums["ndcg@10"] += ndcg_at_k(ranked, rel, 10)
        sums["recall@10"] += recall_at_k(ranked, rel, 10)
        sums["recall@100"] += recall_at_k(ranked, rel, 100)
        sums["mrr@10"] += mrr_at_k(ranked, rel, 10)
        if progress:
            progress(n, len(queries))
    total = max(1, len(queries))
    ordered = sorted(latencies) or [0.0]
    latency = {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}
    return EvalResult({k: v / total for k, v in sums.items()}, len(queries), latency, mode, split)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def load_qa(path: Path) -> list[dict[str, Any]]:
    """A JSONL question set: `question`, `answers` (accepted strings), `sources`, `answerable`."""
    items = list(_jsonl(path))
    for n, item in enumerate(items, start=1):
        if "question" not in item or "answerable" not in item:
            raise RagError(f"{path}: entry {n} needs at least `question` and `answerable`")
    return items


def score_answers(items: list[dict[str, Any]], answers: list[Any], strategy: str) -> dict[str, Any]:
    """Answer accuracy, citation precision, abstention precision/recall, the false-answer
    and false-refusal rates, how well the located answer reads (`reading`), the refusals
    by reason and latency."""
    correct = answerable = cited = cited_right = abstained = abstained_right = unanswerable = 0
    latencies = []
    for item, answer in zip(items, answers):
        latencies.append(answer.timings_ms["total"])
        if not answer.answerable:
            abstained += 1
            abstained_right += not item["answerable"]
        if not item["answerable"]:
            unanswerable += 1
            continue
        answerable += 1
        text = _norm(answer.text)
        correct += answer.answerable and any(_norm(a) in text for a in item.get("answers", []))
        for c in answer.citations:
            cited += 1
            cited_right += c.valid and c.hit.source in item.get("sources", [])
    ordered = sorted(latencies) or [0.0]
    refused = sum(1 for item, a in zip(items, answers) if item["answerable"] and not a.answerable)
    return {"questions": len(items), **_scores(correct, answerable, unanswerable, cited, cited_right, abstained,
                                                abstained_right),
            "false_answer_rate": round(1 - abstained_right / unanswerable, 4) if unanswerable else None,
            "false_refusal_rate": round(refused / answerable, 4) if answerable else None,
            "reading": reading_scores(items, answers),
            "abstain_reasons": dict(Counter(a.abstain_reason for a in answers if not a.answerable)),
            "latency_ms": {"p50": round(statistics.median(ordered), 1),
                           "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)},
            "strategy": strategy}


def reading_scores(items: list[dict[str, Any]], answers: list[Any]) -> dict[str, Any]:
    """On the answerable questions that were answered with a located span: the share whose
    located sentence holds a gold answer, and the span's SQuAD F1 against the gold answers."""
    located = [(item, a.answer_span) for item, a in zip(items, answers)
               if item["answerable"] and a.answerable and a.answer_span is not None and item.get("answers")]
    if not located:
        return {"located": 0, "answer_sentence_accuracy": None, "span_f1": None}
    held = sum(any(_norm(g) in _norm(span.sentence) for g in item["answers"]) for item, span in located)
    f1 = sum(max(token_f1(span.text, g) for g in item["answers"]) for item, span in located)
    return {"located": len(located), "answer_sentence_accuracy": round(held / len(located), 4),
            "span_f1": round(f1 / len(located), 4)}


def token_f1(predicted: str, gold: str) -> float:
    """SQuAD's F1: the harmonic mean of token precision and recall, after lowercasing and
    dropping punctuation and articles."""
    p, g = _squad_words(predicted), _squad_words(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _squad_words(text: str) -> list[str]:
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return [w for w in text.split() if w not in ("a", "an", "the")]


def _scores(correct: int, answerable: int, unanswerable: int, cited: int, cited_right: int, abstained: int,
            abstained_right: int) -> dict[str, Any]:
    return {
        "answerable": answerable,
        "unanswerable": unanswerable,
        "accuracy": round(correct / answerable, 4) if answerable else None,
        "citation_precision": round(cited_right / cited, 4) if cited else None,
        "abstention_precision": round(abstained_right / abstained, 4) if abstained else None,
        "abstention_recall": round(abstained_right / unanswerable, 4) if unanswerable else None,
    }


def evaluate(
    folder: str | Path,
    split: str | None = None,
    mode: str | None = None,
    settings: Settings | None = None,
    embedder: "Embedder | None" = None,
    index_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Retrieval metrics on a BEIR-format folder.

    The corpus is ingested into its own index, `indexes/eval-<folder name>` beside the
    default index unless `index_dir` is given, and reused by later runs.
    """
    from .index import Index
    from .ingestion import ingest

    folder = Path(folder)
    settings = settings_for(settings)
    split = pick_split(folder, split)
    qrels = load_qrels(folder, split)
    queries = load_queries(folder, set(qrels))
    if not queries:
        raise RagError(f"no query of {folder / 'queries.jsonl'} has judgements in qrels/{split}.tsv")
    base = Path(index_dir) if index_dir else settings.index_dir.parent / f"eval-{folder.resolve().name}"
    materialize(folder, base / "docs")
    overrides: dict[str, Any] = {"index_dir": base / "index"}
    if settings.milvus_uri:  # a shared Milvus: the evaluation gets collections of its own
        overrides["milvus_collection"] = "_".join(
            [settings.milvus_collection, "eval", *re.findall(r"[A-Za-z0-9]+", folder.resolve().name)])[:200]
    settings = settings._merged(overrides)
    ingest([base / "docs"], settings=settings, embedder=embedder, progress=progress)
    index = Index.open(settings=settings, embedder=embedder)
    mode = mode or settings.mode
    index.search("warm up", 1, mode)  # load the embedder before the clock starts

    def step(done: int, total: int) -> None:
        if progress:
            progress(Progress("query", done, total))

    try:
        result = run_queries(lambda q, k: index.search(q, k, mode), queries, qrels, mode, split, progress=step)
        return replace(result, reader=reader_name(index) if settings.rerank else None)
    finally:
        index.close()


def reader_name(index: "Index") -> str | None:
    """What the index's reader is called in reports (None when no reader is on)."""
    reader = index.reader
    return reader.name if reader is not None else None


def evaluate_qa(
    path: str | Path, index: "Index", extractive: bool = False, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Ask every question of a JSONL question set and score the answers (see score_answers)."""
    items = load_qa(Path(path))
    answers = []
    for n, item in enumerate(items, start=1):
        answers.append(index.ask(item["question"], extractive=extractive))
        if progress:
            progress(Progress("query", n, len(items)))
    scores = score_answers(items, answers, "extractive" if extractive else index.settings.strategy)
    gate = index.gate if index.span_reader is not None else None
    return {**scores, "reader": reader_name(index), "rerank": bool(index.settings.rerank and index.reader),
            "locate": index.span_reader is not None, "gate": gate.name if gate else None}
