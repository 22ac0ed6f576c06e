"""The ONNX Runtime embedder against sentence-transformers: same vectors, same token
counts, an export made once, and a query path that never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import Settings, ingest
from rag.embedders import make_embedder
from rag.errors import ConfigError, ModelNotFoundError
from rag.embedders.onnx import OnnxEmbedder, UnsupportedModel, export_path
from rag.embedders.torch import SentenceTransformerEmbedder

PROJECT = Path(__file__).resolve().parents[1]
TEXTS = [
    "What is a context window?",
    "FAISS stores dense vectors and searches them by inner product.",
    "",
    "Ünïcödé, 日本語 and emoji 🙂 all tokenize.",
    "long " * 400,  # past the 256-token limit: both must truncate the same way
    (PROJECT / "corpus" / "tokenization.md").read_text(encoding="utf-8")[:1500],
]


@pytest.fixture(scope="module")
def both() -> tuple[OnnxEmbedder, SentenceTransformerEmbedder]:
    return OnnxEmbedder(), SentenceTransformerEmbedder()


def test_onnx_vectors_match_sentence_transformers(both):
    onnx, torch_ = both
    assert (onnx.name, onnx.dim, onnx.max_tokens) == (torch_.name, torch_.dim, torch_.max_tokens)
    a, b = onnx.embed(TEXTS, batch_size=4), torch_.embed(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and a.dtype == np.float32
    assert np.min(np.sum(a * b, axis=1)) >= 0.9999
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # batching and order do not change a vector
    assert np.allclose(onnx.embed(TEXTS[::-1], batch_size=1)[::-1], a, atol=1e-5)


def test_onnx_counts_tokens_as_sentence_transformers_does(both):
    onnx, torch_ = both
    assert onnx.count_tokens(TEXTS) == torch_.count_tokens(TEXTS)
    assert onnx.count_tokens(["long " * 400]) == [400]  # counting does not truncate


def test_the_export_is_made_once_and_reused(both, monkeypatch: pytest.MonkeyPatch):
    onnx, _ = both
    assert export_path(onnx.path).is_file()

    def refuse(*_a, **_k):
        raise AssertionError("exported again")

    monkeypatch.setattr("rag.embedders.onnx.export", refuse)
    again = OnnxEmbedder()
    assert np.allclose(again.embed(TEXTS[:2]), onnx.embed(TEXTS[:2]))


def test_a_damaged_export_names_the_file(tmp_path: Path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelNotFoundError, match="model.onnx"):
        OnnxEmbedder(onnx_file=bad)


def test_auto_runtime_falls_back_to_torch_only_when_onnx_cannot_run(monkeypatch: pytest.MonkeyPatch):
    def unsupported(*_a, **_k):
        raise UnsupportedModel("pools with max tokens")

    monkeypatch.setattr("rag.embedders.onnx.OnnxEmbedder", unsupported)
    assert isinstance(make_embedder(Settings(embed_runtime="auto")), SentenceTransformerEmbedder)
    with pytest.raises(UnsupportedModel):
        make_embedder(Settings(embed_runtime="onnx"))
    with pytest.raises(ConfigError):
        Settings(embed_runtime="tensorflow")
    with pytest.raises(ConfigError):
        Settings.load({"embed_runtime": "gpu"})


def test_the_export_goes_under_the_settings_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    targets: list[Path] = []

    def record(_path, target):
        targets.append(target)
        raise UnsupportedModel("stop before exporting")

    monkeypatch.setattr("rag.embedders.onnx.export", record)
    with pytest.raises(UnsupportedModel):
        make_embedder(Settings(embed_runtime="onnx", cache_dir=tmp_path / "cache"))
    assert len(targets) == 1 and targets[0].is_relative_to(tmp_path / "cache" / "onnx")


def test_loading_a_model_leaves_the_environment_alone(both):
    before = dict(os.environ)
    SentenceTransformerEmbedder()
    OnnxEmbedder()
    assert dict(os.environ) == before


def test_search_and_extractive_ask_never_import_torch(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kv.md").write_text("# KV cache\n\nThe KV cache stores the keys and values of earlier tokens.\n")
    settings = Settings.load({"index_dir": tmp_path / "idx"})
    ingest([docs], settings=settings)
    code = (
        "import sys, json\n"
        "from rag.cli import app\n"
        "for args in (['search', 'what does the KV cache store?'], ['ask', 'What does the KV cache store?', '--extractive']):\n"
        "    try:\n"
        f"        app([*args, '--index-dir', {str(tmp_path / 'idx')!r}, '--json'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []
    assert "kv.md" in out.stdout
