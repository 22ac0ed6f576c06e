"""CLI behaviour that needs no model: errors, exit codes, help. Success paths with the
real models are in test_e2e.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakes import HashEmbedder
from typer.testing import CliRunner

from rag import Settings, ingest
from rag.cli import EXIT_ERROR, app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "search", "ask"):
        assert command in result.stdout


def test_help_imports_no_heavy_library():
    code = "import sys, rag.cli; print(sorted(m for m in ('numpy', 'torch', 'faiss', 'llama_cpp', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_search_without_an_index_says_how_to_build_one(tmp_path: Path):
    result = runner.invoke(app, ["search", "anything", "--index-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == EXIT_ERROR
    assert "no index at" in result.stderr and "rag ingest" in result.stderr
    assert result.stdout == ""


def test_ask_without_an_index_fails_cleanly(tmp_path: Path):
    result = runner.invoke(app, ["ask", "a question?", "--index-dir", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == EXIT_ERROR and "no index at" in result.stderr
    assert result.stdout == ""


def test_ingest_of_an_empty_folder_is_an_error(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.xyz").write_text("unsupported")
    result = runner.invoke(app, ["ingest", str(empty), "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == EXIT_ERROR
    assert "no supported documents" in result.stderr and str(empty) in result.stderr
    assert not (tmp_path / "idx").exists()


def test_ingest_of_a_missing_path_names_it(tmp_path: Path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing")])
    assert result.exit_code == EXIT_ERROR and "missing: no such file or folder" in result.stderr


def _small_index(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text about caching.\n")
    index_dir = tmp_path / "idx"
    ingest([docs], settings=Settings.load({"index_dir": index_dir}), embedder=HashEmbedder())
    return index_dir


def test_ask_with_a_missing_model_file_names_the_file(tmp_path: Path):
    index_dir = _small_index(tmp_path)
    missing = tmp_path / "models" / "nope.gguf"
    result = runner.invoke(app, ["ask", "what?", "--index-dir", str(index_dir), "--model", str(missing)])
    assert result.exit_code == EXIT_ERROR
    assert str(missing) in result.stderr and "does not exist" in result.stderr


def test_ask_with_a_file_that_is_not_gguf_says_so(tmp_path: Path):
    index_dir = _small_index(tmp_path)
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all")
    result = runner.invoke(app, ["ask", "what?", "--index-dir", str(index_dir), "--model", str(fake)])
    assert result.exit_code == EXIT_ERROR and "not a GGUF file" in result.stderr


def test_other_embedder_than_the_index_is_refused(tmp_path: Path):
    index_dir = _small_index(tmp_path)
    other = tmp_path / "other-model"
    other.mkdir()
    result = runner.invoke(app, ["search", "x", "--index-dir", str(index_dir), "--embed-model", str(other)])
    assert result.exit_code == EXIT_ERROR
    assert "test/hash-embedder" in result.stderr and "--rebuild" in result.stderr


def test_bad_setting_in_the_environment_is_named(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "many")
    result = runner.invoke(app, ["search", "x"])
    assert result.exit_code == EXIT_ERROR and "RAG_TOP_K" in result.stderr
