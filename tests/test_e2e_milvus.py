"""End to end on the Milvus store (milvus-lite, no server) with the real default models:
ingest the sample corpus, search, ask SmolLM2 through llama.cpp, sync a changed folder,
and migrate the index to FAISS and back, all through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT / "corpus"
QUESTIONS = [json.loads(l) for l in (PROJECT / "bench" / "corpus_questions.jsonl").read_text().splitlines() if l.strip()]

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("e2e-milvus")
    docs = root / "docs"
    shutil.copytree(CORPUS, docs)
    opts = ["--store", "milvus", "--milvus-uri", str(root / "team.db"), "--index-dir", str(root / "faiss")]
    report = run_json("ingest", str(docs), *opts, "-q")
    assert report["failed"] == [] and report["added"] == len(list(docs.iterdir()))
    return docs, opts


def test_search_finds_the_right_file_in_milvus(where):
    _, opts = where
    answerable = [q for q in QUESTIONS if q["answerable"]][:10]
    right = 0
    for q in answerable:
        hits = run_json("search", q["question"], *opts, "-k", "5")["hits"]
        right += any(h["source"] in q["sources"] for h in hits)
    assert right >= 9


def test_ask_answers_from_milvus_with_real_llm_and_cites(where):
    _, opts = where
    answer = run_json("ask", "What does the KV cache store?", *opts)
    assert answer["answerable"] and answer["sources"]
    cited = [c for c in answer["citations"] if c["valid"]]
    assert cited and any("context-windows" in c["source"] for c in cited)
    assert answer["models"]["llm"]


def test_sync_updates_only_the_changed_file_in_milvus(where):
    docs, opts = where
    target = docs / "embeddings-and-vector-search.md"
    target.write_text(target.read_text() + "\n\nAxolotl embeddings are a made-up example for this test.\n")
    report = run_json("ingest", str(docs), *opts, "-q")
    assert report["paths"]["updated"] == [target.name] and report["added"] == 0 and report["removed"] == 0
    # One rare word: milvus-lite keeps BM25 statistics per segment (its own documented
    # limitation), so a common word's weight in the freshly written segment differs.
    hits = run_json("search", "axolotl", *opts, "-k", "3", "--mode", "lexical")["hits"]
    assert [h["source"] for h in hits] == [target.name] and "Axolotl" in hits[0]["text"]
    old = run_json("search", "axolotl embeddings", *opts, "-k", "20")["hits"]
    assert [h["chunk_id"] for h in old if h["source"] == target.name and "Axolotl" in h["text"]]
    assert len({h["chunk_id"] for h in old}) == len(old)  # no superseded copy of a chunk


def test_migrate_to_faiss_gives_the_same_dense_results(where):
    _, opts = where
    moved = run_json("migrate", "--to", "faiss", *opts, "-q")
    faiss_opts = opts[opts.index("--index-dir"):]
    assert run_json("list", *faiss_opts)["chunks"] == moved["chunks"] == run_json("list", *opts)["chunks"]
    for q in [q["question"] for q in QUESTIONS[:5]]:
        a = run_json("search", q, *opts, "--mode", "dense")["hits"]
        b = run_json("search", q, *faiss_opts, "--mode", "dense")["hits"]
        assert [h["chunk_id"] for h in a] == [h["chunk_id"] for h in b]
        assert [round(h["score"], 4) for h in a] == [round(h["score"], 4) for h in b]
