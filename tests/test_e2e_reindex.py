"""End to end with two real embedder variants: the default all-MiniLM-L6-v2 (fp32 ONNX)
and its int8 quantization (rag/embedders/quantize.py). A corpus is ingested with fp32,
moved to int8 with `rag reindex --embed-variant int8` (no document read again), searched
with int8 without saying so, and refused to an fp32 ingest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli import EXIT_ERROR, app
from rag.config import Settings
from rag.embedders import make_embedder, split_variant, variant_name
from rag.errors import ConfigError
from rag.index import Index

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT / "corpus"
DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_variant_names_round_trip():
    assert variant_name(DEFAULT, "fp32") == DEFAULT
    assert split_variant(variant_name(DEFAULT, "int8")) == (DEFAULT, "int8")
    assert split_variant("/models/odd [name") == ("/models/odd [name", "fp32")
    with pytest.raises(ConfigError, match="embed_variant"):
        Settings.load({"embed_variant": "int4"})
    with pytest.raises(ConfigError, match="ONNX"):
        make_embedder(Settings.load({"embed_variant": "int8", "embed_runtime": "torch"}))


def test_int8_vectors_stay_close_to_fp32():
    texts = [p.read_text(encoding="utf-8")[:1000] for p in sorted(CORPUS.glob("*.md"))[:8]]
    fp32 = make_embedder(Settings.load({"embed_variant": "fp32"}))
    int8 = make_embedder(Settings.load({"embed_variant": "int8"}))
    assert int8.name == variant_name(DEFAULT, "int8") and int8.dim == fp32.dim == 384
    cosines = np.sum(fp32.embed(texts) * int8.embed(texts), axis=1)
    assert cosines.min() > 0.98, cosines


def test_reindex_moves_an_fp32_index_to_int8_and_search_follows(tmp_path: Path):
    index_dir = str(tmp_path / "index")
    added = run_json("ingest", str(CORPUS), "--index-dir", index_dir, "--embed-variant", "fp32", "-q")
    question = "What does the KV cache store?"
    before = run_json("search", question, "-k", "3", "--index-dir", index_dir)
    report = run_json("reindex", "--embed-variant", "int8", "--index-dir", index_dir, "-q")
    assert report["changed"] and report["old_embedder"] == DEFAULT
    assert report["new_embedder"] == variant_name(DEFAULT, "int8") and report["chunks"] == added["chunks"]
    live = (Path(index_dir) / "CURRENT").read_text().strip()
    manifest = json.loads((Path(index_dir) / live / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == variant_name(DEFAULT, "int8")
    # Searched with int8 though nothing says so: the index records its variant.
    index = Index.open(settings=Settings.load({"index_dir": index_dir}))
    assert index.embedder.name == variant_name(DEFAULT, "int8")
    index.close()
    after = run_json("search", question, "-k", "3", "--index-dir", index_dir)
    assert after["hits"][0]["source"] == before["hits"][0]["source"]
    # An fp32 ingest into the int8 index is refused, and says how to move it.
    refused = runner.invoke(app, ["ingest", str(CORPUS), "--index-dir", index_dir, "--embed-variant", "fp32"])
    assert refused.exit_code == EXIT_ERROR and "rag reindex" in refused.stderr
    back = run_json("reindex", "--embed-variant", "fp32", "--index-dir", index_dir, "-q")
    assert back["changed"] and back["new_embedder"] == DEFAULT
