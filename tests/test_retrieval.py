"""Hybrid retrieval, filters, dedup, the lexical index's sync, and the eval metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes import HashEmbedder

from rag import Settings, ingest
from rag.errors import ConfigError
from rag.evaluate import mrr_at_k, ndcg_at_k, recall_at_k
from rag.evaluate import evaluate
from rag.index import Index
from rag.retrieve import rrf
from rag.text import fts_query
from rag.types import Where


def test_metrics_against_a_hand_computed_example():
    ranked = ["d3", "d1", "d7", "d2", "d9"]
    relevant = {"d1": 1, "d2": 2, "d5": 1}
    # DCG = 1/log2(3) + 2/log2(5); ideal order 2, 1, 1: 2/log2(2) + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / 1 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(["x"], relevant, 10) == 0.0
    assert ndcg_at_k(["d2", "d1", "d5"], relevant, 10) == pytest.approx(1.0)


def test_rrf_rewards_agreement_and_keeps_single_list_items():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(3, 12.0), (4, 9.0), (1, 5.0)]
    fused = [cid for cid, _ in rrf([dense, lexical], k=60)]
    assert fused[:2] == [1, 3] and set(fused) == {1, 2, 3, 4}
    assert rrf([dense, lexical], k=60)[0][1] == pytest.approx(1 / 61 + 1 / 63)


def test_fts_query_keeps_content_words_only():
    assert fts_query("What is the KV-cache, and why?") == '"kv" OR "cache"'
    assert fts_query("what is it?") == ""


def test_where_parsing_and_matching():
    w = Where.parse(["type=pdf", "source=reports/*"])
    assert w.accepts("reports/q1.pdf") and not w.accepts("reports/q1.md") and not w.accepts("q1.pdf")
    assert Where.parse(["source=*.md"]).accepts("deep/dir/notes.md")
    assert Where.parse(["type=md"]).accepts("a.markdown")
    with pytest.raises(ConfigError):
        Where.parse(["colour=red"])


@pytest.fixture(params=["faiss", "milvus"])
def index(tmp_path: Path, request):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "zebra.md").write_text("# Zebras\n\nZebras have black and white stripes and live in Africa.\n")
    (docs / "sub" / "okapi.txt").write_text("The okapi is a forest giraffe with striped legs.\n")
    (docs / "tax.txt").write_text("Form 1040-XZ is the annual tax return for residents.\n")
    settings = Settings.load({"index_dir": tmp_path / "idx", "store": request.param})
    ingest([docs], settings=settings, embedder=HashEmbedder())
    return docs, settings


def test_lexical_mode_finds_rare_exact_terms(index):
    _, settings = index
    hits = Index.open(settings=settings, embedder=HashEmbedder()).search("1040-XZ", 3, mode="lexical")
    assert [h.source for h in hits] == ["tax.txt"]
    assert hits[0].similarity is not None and -1.01 <= hits[0].similarity <= 1.01


def test_every_mode_ranks_and_filters(index):
    _, settings = index
    idx = Index.open(settings=settings, embedder=HashEmbedder())
    for mode in ("dense", "lexical", "hybrid"):
        hits = idx.search("zebras stripes Africa", 3, mode=mode)
        assert hits[0].source == "zebra.md", mode
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    only_txt = idx.search("zebras stripes Africa", 3, where=Where.parse(["type=txt"]))
    assert only_txt and all(h.source.endswith(".txt") for h in only_txt)
    assert all(h.source.startswith("sub/") for h in idx.search("stripes", 3, where=Where.parse(["source=sub/*"])))
    with pytest.raises(ConfigError):
        idx.search("x", 3, mode="fuzzy")


def test_overlapping_chunks_do_not_crowd_the_results(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    sentences = " ".join(f"Sentence {i} repeats the words lemur habitat." for i in range(40))
    (docs / "long.txt").write_text(sentences + "\n")
    (docs / "other.txt").write_text("A lemur habitat note in another file.\n")
    settings = Settings.load({"index_dir": tmp_path / "idx", "chunk_tokens": 40, "chunk_overlap": 20})
    ingest([docs], settings=settings, embedder=HashEmbedder())
    hits = Index.open(settings=settings, embedder=HashEmbedder()).search("lemur habitat", 10, mode="lexical")
    spans = [(h.source, h.start, h.end) for h in hits]
    for i, (s1, a1, b1) in enumerate(spans):
        for s2, a2, b2 in spans[i + 1 :]:
            if s1 == s2:
                assert min(b1, b2) - max(a1, a2) <= 0.5 * min(b1 - a1, b2 - a2)


def test_lexical_index_follows_incremental_ingest(index):
    docs, settings = index

    def lexical(q: str) -> list[str]:
        idx = Index.open(settings=settings, embedder=HashEmbedder())
        try:
            return [h.source for h in idx.search(q, 5, mode="lexical")]
        finally:
            idx.close()

    assert lexical("okapi") == ["sub/okapi.txt"]
    (docs / "sub" / "okapi.txt").write_text("Renamed animal text about tapirs now.\n")
    (docs / "tax.txt").unlink()
    report = ingest([docs], settings=settings, embedder=HashEmbedder())
    assert report.updated == ("sub/okapi.txt",) and report.removed == ("tax.txt",)
    assert lexical("okapi") == [] and lexical("tapirs") == ["sub/okapi.txt"] and lexical("1040") == []


def test_evaluate_on_a_tiny_beir_folder(tmp_path: Path):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = [("d1", "Zebras", "Zebras have black and white stripes."), ("d2", "Okapi", "The okapi is a forest giraffe."),
            ("d3", "Tax", "Annual tax forms for residents.")]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs))
    (beir / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in [
        {"_id": "q1", "text": "zebra stripes"}, {"_id": "q2", "text": "forest giraffe okapi"}, {"_id": "q3", "text": "no qrels"}]))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    settings = Settings.load({"index_dir": tmp_path / "idx"})
    result = evaluate(beir, settings=settings, embedder=HashEmbedder(), mode="lexical")
    data = result.to_dict()
    assert set(data) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "latency_ms", "mode", "split"}
    assert data["queries"] == 2 and data["split"] == "test" and data["mode"] == "lexical"
    assert data["ndcg@10"] == 1.0 and data["mrr@10"] == 1.0 and data["recall@100"] == 1.0
    assert (tmp_path / "eval-tiny" / "docs" / "d1.txt").read_text().startswith("Zebras\n\n")
    again = evaluate(beir, settings=settings, embedder=HashEmbedder(), mode="hybrid")  # cached index reused
    assert again.queries == 2 and again.metrics["recall@100"] == 1.0
    assert (data["rerank"], data["reader"]) == (False, None)


def test_convex_fusion_rescales_each_list_and_weighs_them_equally():
    from rag.retrieve import convex

    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(3, 20.0), (4, 10.0), (1, 0.0)]
    fused = dict(convex([dense, lexical]))
    assert fused[1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused[3] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert fused[2] == pytest.approx(0.5 * 0.5) and fused[4] == pytest.approx(0.5 * 0.5)
    assert convex([[], lexical])[0][0] == 3
