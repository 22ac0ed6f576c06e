"""Everyday command-line use: the version, the index named by its absolute path in every
message about it, and complete output when piped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

import rag
from rag.cli import EXIT_ERROR, app

PROJECT = Path(__file__).resolve().parents[1]
runner = CliRunner()
# The command line in its own process (its own logging set-up), with the hash embedder: no model to load.
HASHED_CLI = ("from fakes import HashEmbedder; import rag.ingestion, rag.index; "
              "rag.ingestion.make_embedder = rag.index.make_embedder = lambda *a, **k: HashEmbedder(); "
              "from rag.cli import main; main()")


def test_version_is_the_packages():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"rag {rag.__version__}\n"
    with open(PROJECT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["version"] == rag.__version__


def test_a_missing_index_is_named_by_its_absolute_path(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("RAG_INDEX_DIR")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = runner.invoke(app, ["search", "owls"])
    assert result.exit_code == EXIT_ERROR
    assert f"no index at {tmp_path / 'elsewhere' / 'indexes' / 'default'}:" in result.stderr
    result = runner.invoke(app, ["ask", "owls?", "--index-dir", "rel/idx"])
    assert f"no index at {tmp_path / 'elsewhere' / 'rel' / 'idx'}:" in result.stderr


def test_an_empty_index_is_named(tmp_path: Path, hash_models):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Owls hunt at night.\n", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(docs), "--index-dir", "idx", "-q"]).exit_code == 0
    assert runner.invoke(app, ["remove", "a.md", "--index-dir", "idx"]).exit_code == 0
    result = runner.invoke(app, ["search", "owls", "--index-dir", "idx"])
    assert f"no results: the index at {tmp_path / 'idx'} is empty" in result.stderr


def test_piped_list_keeps_long_names_whole_and_has_no_colour(tmp_path: Path):
    long = "a-folder-with-a-long-name-to-see-whether-it-fits/" + "a-file-name-much-longer-than-eighty-columns" * 2
    docs = tmp_path / "docs"
    (docs / long).parent.mkdir(parents=True)
    (docs / f"{long}.md").write_text("Owls hunt at night.\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "tests")]), "COLUMNS": "80",
           "TERM": "xterm-256color"}
    rag_cmd = [sys.executable, "-c", HASHED_CLI]
    done = subprocess.run([*rag_cmd, "ingest", str(docs), "--index-dir", str(tmp_path / "idx"), "-q"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([*rag_cmd, "list", "--index-dir", str(tmp_path / "idx")],
                            env=env, capture_output=True, text=True, timeout=120)  # stdout is a pipe
    assert listed.returncode == 0 and f"{long}.md" in listed.stdout
    assert "\x1b[" not in listed.stdout and not re.search(r"…", listed.stdout)


def test_parser_logging_stays_out_of_the_output_unless_verbose(tmp_path: Path):
    """pypdf logs "EOF marker not found" and the like for a damaged PDF; the user sees
    the file's warning in the report, and pypdf's own words only with -v."""
    from made_files import LOREM, pdf_bytes, without_xref

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cut.pdf").write_bytes(without_xref(pdf_bytes([[LOREM]])))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "tests")])}
    outputs = {}
    for flags in ([], ["-v"]):
        done = subprocess.run([sys.executable, "-c", HASHED_CLI, "ingest", str(docs), "--index-dir",
                               str(tmp_path / f"idx{len(flags)}"), *flags], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        outputs[len(flags)] = done.stderr
    assert "warning: cut.pdf: damaged PDF" in outputs[0]
    assert "pypdf" not in outputs[0] and "EOF marker" not in outputs[0]
    assert "pypdf" in outputs[1]
