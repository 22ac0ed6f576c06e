"""CLI behaviour that needs no model: errors, exit codes, help, where output goes, JSON
mode. Success paths with the real models are in test_e2e.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import EchoGenerator, HashEmbedder
from typer.main import get_command
from typer.testing import CliRunner

from rag import Settings
from rag.pipeline import Index, ingest
from rag.cli import EXIT_ERROR, EXIT_NOT_ANSWERABLE, app
from rag.cli_options import settings_from

runner = CliRunner()
COMMANDS = ("ingest", "list", "remove", "search", "ask", "chat", "eval", "migrate", "serve", "mcp")
USAGE_ERROR = 2


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_help_imports_no_heavy_library():
    code = (
        "import sys\nfrom rag.cli import app\ntry:\n    app(['ask', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('numpy', 'torch', 'faiss', 'llama_cpp', 'sentence_transformers', 'onnxruntime', 'rich', "
        "'markdown_it', 'pydantic')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "[]", "rich's help rendering costs ~90 ms of every `rag --help`"


def test_commands_set_the_process_defaults_and_help_does_not(tmp_path: Path):
    code = (
        "import os, sys\nfrom rag.cli import app\n"
        "def run(*args):\n    try:\n        app(list(args))\n    except SystemExit:\n        pass\n"
        "run('--help')\nprint('rag.runtime' in sys.modules, os.environ.get('HF_HUB_OFFLINE'), file=sys.stderr)\n"
        f"run('list', '--index-dir', {str(tmp_path / 'nowhere')!r})\n"
        "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TOKENIZERS_PARALLELISM'), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stderr.splitlines()[0] == "False None" and out.stderr.splitlines()[-1] == "1 false"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_as_written_by_a_person(command: str):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = result.stdout
    assert not re.search(r"<\w+(\[[\w\[\], ]*\])?>", text), "no Python types such as <bool>, <str>, <list[Path]>"
    assert not re.search(r"\w \.(\s|$)", text), "no space before a full stop (markup eating a [bracket])"
    usage = text.splitlines()[0]
    assert "{" not in usage and f" {command} [OPTIONS]" in usage


def test_ask_and_chat_take_the_same_flags():
    commands = get_command(app).commands  # type: ignore[attr-defined]

    def flags(name: str) -> set[str]:
        return {o for p in commands[name].params for o in p.opts if o.startswith("-")}

    assert flags("ask") == flags("chat")
    assert {"--extractive", "--strategy", "-k", "--model", "--llm-model", "--where", "--json"} <= flags("chat")


def test_extractive_flag_and_strategy_are_one_setting(monkeypatch):
    assert settings_from(extractive=True, strategy="llm").strategy == "extractive"
    assert settings_from(strategy="extractive").strategy == "extractive"
    monkeypatch.setenv("RAG_STRATEGY", "llm")
    assert settings_from().strategy == "llm" and settings_from(extractive=True).strategy == "extractive"
    names = settings_from(k=3, model="m.gguf", llm_model="served", max_tokens=9, llm="llama.cpp")
    assert (names.top_k, names.gguf_path, names.server_model, names.max_answer_tokens) == (3, "m.gguf", "served", 9)


@pytest.mark.parametrize("args", [
    ["ask", "q?", "--min-score", "2"],
    ["ask", "q?", "--min-coverage", "-0.1"],
    ["ask", "q?", "--context-tokens", "0"],
    ["ask", "q?", "--max-tokens", "-5"],
    ["ask", "q?", "--temperature", "-1"],
    ["chat", "-k", "0"],
    ["search", "q", "-k", "0"],
    ["ingest", ".", "--chunk-tokens", "0"],
    ["ingest", ".", "--chunk-overlap", "-1"],
    ["ingest", ".", "--workers", "-1"],
    ["eval", "--qa", "q.jsonl", "--context-tokens", "0"],
])
def test_values_out_of_range_are_usage_errors(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == USAGE_ERROR, result.output
    flag = args[-2]
    assert flag in result.stderr and "Traceback" not in result.stderr


def test_search_without_an_index_says_how_to_build_one(tmp_path: Path):
    result = runner.invoke(app, ["search", "anything", "--index-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == EXIT_ERROR
    assert "no index at" in result.stderr and "rag ingest" in result.stderr
    assert result.stdout == ""


def test_json_error_is_one_object_on_stdout(tmp_path: Path):
    result = runner.invoke(app, ["ask", "a question?", "--index-dir", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == EXIT_ERROR and "no index at" in result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "IndexNotFoundError" and error["exit_code"] == EXIT_ERROR
    assert error["message"].startswith("no index at") and "error:" not in error["message"]
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize("command", [["search", "x"], ["ask", "x?"], ["list"], ["ingest", "docs"], ["remove", "a.txt"]])
def test_index_dir_that_is_a_file_says_what_to_do(tmp_path: Path, command: list[str]):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Some words.\n")
    (tmp_path / "afile").write_text("not an index\n")
    for index_dir in (tmp_path / "afile", tmp_path / "afile" / "below"):
        result = runner.invoke(app, [*command, "--index-dir", str(index_dir)])
        assert result.exit_code == EXIT_ERROR, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Errno" not in lines[0]
        assert "afile is a file" in lines[0] and "--index-dir" in lines[0]


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


@pytest.fixture
def default_named_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash embedder under the default embedder's name: a second `rag ingest` then
    passes the embedder check and reaches the chunking check."""
    from rag.embedders import resolve_embed_model

    name = resolve_embed_model(None)[0]
    for module in ("rag.ingestion", "rag.index"):
        monkeypatch.setattr(f"{module}.make_embedder", lambda *a, **k: HashEmbedder(name=name))


def _cli_ingest(tmp_path: Path, *args: str):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "a.txt").write_text("Some text about caching.\n")
    return runner.invoke(app, ["ingest", str(docs), "--index-dir", str(tmp_path / "idx"), "-q", *args])


def test_ingest_summary_is_the_result_on_stdout(tmp_path: Path, hash_models):
    result = _cli_ingest(tmp_path)  # as `rag ingest docs > log`
    assert result.exit_code == 0, result.stderr
    assert re.search(r"added\s+1", result.stdout) and "files in index" in result.stdout
    assert "added" not in result.stderr


def test_remove_says_what_it_removed_on_stdout(tmp_path: Path, hash_models):
    assert _cli_ingest(tmp_path).exit_code == 0
    result = runner.invoke(app, ["remove", "a.txt", "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.stderr
    assert "removed 1 file(s): a.txt" in result.stdout


def test_chunk_settings_mismatch_is_one_clear_line(tmp_path: Path, default_named_models):
    assert _cli_ingest(tmp_path).exit_code == 0
    assert _cli_ingest(tmp_path).exit_code == 0, "the same settings again are fine"
    result = _cli_ingest(tmp_path, "--chunk-tokens", "64")
    assert result.exit_code == EXIT_ERROR
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rebuild" in lines[0] and "64" in lines[0]
    assert "{" not in lines[0], "settings named as a person would, not as Python dicts"


def test_ask_with_a_missing_model_file_names_the_file(tmp_path: Path, hash_models):
    index_dir = _small_index(tmp_path)
    missing = tmp_path / "models" / "nope.gguf"
    result = runner.invoke(app, ["ask", "what?", "--index-dir", str(index_dir), "--model", str(missing)])
    assert result.exit_code == EXIT_ERROR
    assert str(missing) in result.stderr and "does not exist" in result.stderr


def test_ask_with_a_file_that_is_not_gguf_says_so(tmp_path: Path, hash_models):
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


# --- `rag chat --json` with fakes ----------------------------------------------------

CATS_Q = "Why do cats purr when content?"


@pytest.fixture
def chat_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An index built with the hash embedder, and Index.open patched to use the fakes."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores.\n")
    ingest([docs], settings=Settings.load({"index_dir": tmp_path / "idx"}), embedder=HashEmbedder())
    real_open = Index.open.__func__  # type: ignore[attr-defined]

    def fake_open(cls, index_dir=None, settings=None, embedder=None, generator=None):  # type: ignore[no-untyped-def]
        return real_open(cls, index_dir, settings, HashEmbedder(), EchoGenerator())

    monkeypatch.setattr(Index, "open", classmethod(fake_open))
    monkeypatch.setenv("RAG_FALLBACK", "false")
    return str(tmp_path / "idx")


def test_chat_json_prints_one_answer_object_per_turn(chat_index: str):
    too_long = " ".join(["cats"] * 300) + "?"
    result = runner.invoke(
        app, ["chat", "--index-dir", chat_index, "--min-score", "0.2", "--context-tokens", "300", "--max-tokens", "20",
              "--json"],
        input=f"{CATS_Q}\n/sources\n{too_long}\nDo they sleep much?\n",
    )
    assert result.exit_code == 0, result.stderr
    turns = [json.loads(line) for line in result.stdout.splitlines()]  # nothing but JSON lines
    assert len(turns) == 3
    first, failed, follow_up = turns
    assert first["question"] == CATS_Q and EchoGenerator.ANSWER in first["answer"]
    assert {"answerable", "citations", "sources", "strategy", "timings_ms"} <= first.keys()
    assert failed["error"]["type"] == "ConfigError" and "--context-tokens" in failed["error"]["message"]
    assert follow_up["question"] == "Do they sleep much?"
    assert "Sources" in result.stderr, "/sources goes to stderr: stdout holds only JSON"
    assert "error:" in result.stderr


def test_chat_json_error_before_the_first_turn(tmp_path: Path):
    result = runner.invoke(app, ["chat", "--index-dir", str(tmp_path / "nowhere"), "--json"], input="hello?\n")
    assert result.exit_code == EXIT_ERROR and "no index at" in result.stderr
    assert json.loads(result.stdout)["error"]["type"] == "IndexNotFoundError"


# --- what `rag ask` and `rag search` print, with fakes ----------------------------------

class _Writes(EchoGenerator):
    """Answers every prompt with `text`, as a small model might."""

    text = ""

    def stream(self, prompt, max_tokens, temperature, n_ctx):  # type: ignore[no-untyped-def]
        yield self.text


@pytest.fixture
def ask_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `rag` on a small index with the fakes; the model writes what the test gives it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores. Cats like stars.\n")
    ingest([docs], settings=Settings.load({"index_dir": tmp_path / "idx"}), embedder=HashEmbedder())
    real_open = Index.open.__func__  # type: ignore[attr-defined]

    def fake_open(cls, index_dir=None, settings=None, embedder=None, generator=None):  # type: ignore[no-untyped-def]
        return real_open(cls, index_dir, settings, HashEmbedder(), _Writes())

    monkeypatch.setattr(Index, "open", classmethod(fake_open))

    def run(*args: str, writes: str = "", env: dict[str, str] | None = None):
        _Writes.text = writes
        return runner.invoke(app, [*args, "--index-dir", str(tmp_path / "idx")], env=env)

    return run


DRAFT = ("Question: Why do cats purr when content?\n"
         "Cats sleep most of the day and purr when content [1]. Dogs can fly over the moon [1].")


def test_ask_prints_only_what_the_sources_support(ask_index):
    result = ask_index("ask", CATS_Q, "--min-score", "0.2", "--strategy", "llm", writes=DRAFT)
    assert result.exit_code == 0, result.stderr
    answer = result.stdout.partition("\nSources\n")[0]
    assert "Cats sleep most of the day and purr when content [1]." in answer
    assert "Dogs can fly" not in result.stdout and "Question:" not in result.stdout
    assert "2 sentences of the model's answer left out" in result.stderr and "--show-unsupported" in result.stderr


@pytest.mark.parametrize("how", [["--show-unsupported"], []])
def test_show_unsupported_prints_them_marked_in_plain_words(ask_index, how: list[str]):
    env = None if how else {"RAG_SHOW_UNSUPPORTED": "1"}
    result = ask_index("ask", CATS_Q, "--min-score", "0.2", "--strategy", "llm", *how, writes=DRAFT, env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(DRAFT), "the model's answer as it wrote it"
    assert "NOT SUPPORTED ([1] does not say this): Dogs can fly" in result.stdout
    assert "NOT SUPPORTED (it copies the prompt, not the sources): Question:" in result.stdout
    assert "supported by [1]: Cats sleep" in result.stdout and "by no source" not in result.stdout


def test_ask_json_keeps_the_left_out_sentences(ask_index):
    result = ask_index("ask", CATS_Q, "--min-score", "0.2", "--strategy", "llm", "--json", writes=DRAFT)
    data = json.loads(result.stdout)
    assert data["answer"] == "Cats sleep most of the day and purr when content [1]." and data["llm_answer"] == DRAFT
    assert [(s["supported"], s["reason"]) for s in data["sentences"]] == [
        (False, "echo"), (True, None), (False, "unsupported")]


def test_an_unsupported_answer_is_replaced_by_the_sources_words(ask_index):
    result = ask_index("ask", CATS_Q, "--min-score", "0.2", writes="Dogs can fly [1].")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Cats sleep most of the day and purr when content. [1]")
    assert "Dogs can fly" not in result.stdout and "not supported by the sources" in result.stderr


@pytest.mark.parametrize("question, flags, writes, why", [
    ("Why do dogs purr on Jupiter?", ["--min-score", "0.2"], "", "No document mentions Jupiter."),
    ("quantum chromodynamics lattice gauge", ["--gate", "off"], "", "Nothing in the documents is close to the question"),
    ("Why do cats purr when content at night?", ["--gate", "off", "--min-score", "0.2", "--min-coverage", "1"], "",
     "No passage answers it"),
    (CATS_Q, ["--min-score", "0.2"], "", "found no answer in them"),
])
def test_a_refusal_says_why(ask_index, question: str, flags: list[str], writes: str, why: str):
    result = ask_index("ask", question, *flags, writes=writes)
    assert result.exit_code == EXIT_NOT_ANSWERABLE, result.stderr
    assert result.stdout.startswith("The documents do not contain the answer.")
    assert why in result.stdout and "too far" not in result.stdout


def test_lists_show_the_score_they_are_ranked_by(ask_index):
    result = ask_index("search", "cats stars", "--mode", "lexical")
    assert result.exit_code == 0, result.stderr
    ranked = [float(m) for m in re.findall(r"^\d+\. lexical (-?[\d.]+) · cosine [\d.]+ ", result.stdout, re.M)]
    assert len(ranked) == 2 and ranked == sorted(ranked, reverse=True)
    dense = ask_index("search", "cats stars", "--mode", "dense").stdout
    assert re.search(r"^1\. cosine [\d.]+  ", dense, re.M) and "· cosine" not in dense
    answer = ask_index("ask", CATS_Q, "--min-score", "0.2", writes="Cats sleep most of the day and purr when content.")
    uncited = r"\[1\] cats\.md \(hybrid [\d.]+ · cosine [\d.]+; the answer repeats it, uncited\)"
    assert re.search(uncited, answer.stdout)
    assert "matched" not in answer.stdout


def test_the_draft_shows_dimmed_on_a_terminal_and_is_erased(monkeypatch: pytest.MonkeyPatch):
    import io

    from rich.console import Console

    from rag import cli_render as show

    screen = io.StringIO()
    monkeypatch.setattr(show, "err", Console(file=screen, force_terminal=True, width=40, soft_wrap=True))
    with show.Draft(True) as on_draft:
        assert on_draft is not None
        for piece in ("Cats sleep ", "all day [1]. " * 8):
            on_draft(piece)
    drawn = screen.getvalue()
    assert "\x1b[2mCats sleep all day [1]." in drawn, "dimmed"
    assert drawn.endswith("\x1b[2K") and drawn.count("\x1b[1A") >= 3, "wrapped lines, all erased at the end"
    with show.Draft(False) as nothing:
        assert nothing is None
    monkeypatch.setattr(show, "err", Console(file=io.StringIO()))  # not a terminal: no draft
    with show.Draft(True) as nothing:
        assert nothing is None
