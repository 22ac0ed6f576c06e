"""Chat: the follow-up rewrite rule, ChatSession with fakes, and `rag chat` through the CLI
(with fakes, then with the real default models)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes import EchoGenerator, HashEmbedder
from typer.testing import CliRunner

from rag import Settings, ingest
from rag.chat import MAX_TOPIC_WORDS, ChatSession, leans_on_previous, standalone_query
from rag.cli import EXIT_ERROR, app
from rag.errors import ConfigError
from rag.index import Index
from rag.prompt import NOT_FOUND

runner = CliRunner()
PROJECT = Path(__file__).resolve().parents[1]
KV = [("What does the KV cache store?", "Keys and values of earlier tokens.")]
CATS_Q = "Why do cats purr when content?"


# --- standalone_query --------------------------------------------------------------


def test_first_turn_is_unchanged():
    assert standalone_query("Why is it large?", []) == "Why is it large?"


def test_pronoun_follow_up_gets_the_previous_topic_words():
    assert standalone_query("Why is it so large?", KV) == "Why is it so large? kv cache store"


@pytest.mark.parametrize("question", [
    "How does tokenization split words into subwords?",
    "What is the cache that grows with the sequence?",  # "that" after a noun: a relative pronoun
    "What is RAG?",
    "How does byte-pair encoding build its vocabulary?",  # "its" refers back inside the question
    "Does LoRA train fewer parameters than full fine-tuning?",
])
def test_self_contained_question_is_unchanged(question: str):
    assert not leans_on_previous(question)
    assert standalone_query(question, KV) == question


@pytest.mark.parametrize("question", [
    "What about grouped-query attention?", "And on GPUs?", "How about paged attention",
    "Why?", "Tell me more.", "Why is that?", "Are these stored per layer?", "What do they cost?",
    "Does it use much memory on long prompts?", "Compare it with paged attention.", "Why do models need it?",
])
def test_follow_ups_that_lean_on_the_previous_turn(question: str):
    assert leans_on_previous(question)
    # "stored" already says "store" (both stem to "stor"), so only the topic is added
    assert standalone_query(question, KV).endswith("kv cache store" if "stored" not in question else "kv cache")


def test_words_the_follow_up_has_are_not_repeated():
    assert standalone_query("What about its cache size?", KV) == "What about its cache size? kv store"


def test_a_chain_of_follow_ups_keeps_the_first_topic():
    history = [*KV, ("Why is it large?", "It grows with the sequence.")]
    assert standalone_query("How can it be reduced?", history) == "How can it be reduced? large kv cache store"


def test_a_self_contained_question_starts_a_new_topic():
    history = [*KV, ("How does byte-pair encoding build its vocabulary?", "By merging pairs.")]
    query = standalone_query("Why does it matter?", history)
    assert "byte-pair" in query and "kv" not in query


def test_topic_words_are_capped():
    long = [("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda?", "")]
    assert len(standalone_query("Why?", long).split()) == 1 + MAX_TOPIC_WORDS


# --- ChatSession with fakes ----------------------------------------------------------


def _fake_index(tmp_path: Path) -> Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores.\n")
    settings = Settings.load({"index_dir": tmp_path / "idx", "min_score": 0.2, "fallback": False, "strategy": "llm"})
    ingest([docs], settings=settings, embedder=HashEmbedder())
    return Index.open(settings=settings, embedder=HashEmbedder(), generator=EchoGenerator())


@pytest.fixture
def session(tmp_path: Path) -> ChatSession:
    return ChatSession(_fake_index(tmp_path))


def test_second_prompt_holds_the_first_turn_and_retrieval_uses_the_rewrite(session: ChatSession):
    first = session.ask(CATS_Q)
    assert first.answerable and session.last is first and session.last_query == CATS_Q
    second = session.ask("Do they sleep much?")
    assert session.last is second and session.last_query == "Do they sleep much? cats purr content"
    embedder = session.index.embedder
    assert embedder.embedded[-1] == session.last_query  # type: ignore[attr-defined]
    assert second.sources[0].source == "cats.md"
    prompts = session.index.generator.prompts  # type: ignore[attr-defined]
    assert f"user: {CATS_Q}" not in prompts[0]  # no history on turn one
    turn_one = f"user: {CATS_Q}\nassistant: The sources say so.\nuser: Question: Do they sleep much?"
    assert turn_one in prompts[1], "the first turn, without its [1], goes before the new question"
    assert session.history == [(CATS_Q, "The sources say so."), ("Do they sleep much?", "The sources say so.")]


def test_unanswered_turn_steers_the_rewrite_but_stays_out_of_the_prompt(session: ChatSession):
    answer = session.ask("quantum chromodynamics lattice gauge")
    assert not answer.answerable and answer.text == NOT_FOUND
    assert session.history == [] and len(session.turns) == 1
    assert session.query_for("What about it?") == "What about it? quantum chromodynamics lattice gauge"


def test_clear_forgets_the_conversation(session: ChatSession):
    session.ask(CATS_Q)
    session.clear()
    assert session.history == [] and session.last is None and session.last_query is None
    assert session.query_for("Do they sleep?") == "Do they sleep?"


def test_history_is_bounded(tmp_path: Path):
    session = ChatSession(_fake_index(tmp_path), max_turns=2)
    for word in ("softly", "loudly", "often", "daily"):
        session.ask(f"Do cats purr {word}?")
    assert [q for q, _ in session.history] == ["Do cats purr often?", "Do cats purr daily?"]


def test_a_failed_question_leaves_the_session_as_it_was(session: ChatSession):
    session.ask(CATS_Q)
    with pytest.raises(ConfigError):
        session.ask("   ")
    assert len(session.turns) == 1 and session.last is not None and session.last.question == CATS_Q


def test_extractive_chat_needs_no_generator(session: ChatSession):
    answer = session.ask(CATS_Q, extractive=True)
    assert answer.strategy == "extractive" and "purr when content" in answer.text
    assert session.index.generator.prompts == []  # type: ignore[attr-defined]


# --- `rag chat` with fakes -----------------------------------------------------------


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, EchoGenerator]:
    """An index built with the hash embedder, and Index.open patched to use the fakes."""
    _fake_index(tmp_path).close()
    generator = EchoGenerator()
    real_open = Index.open.__func__  # type: ignore[attr-defined]

    def fake_open(cls, index_dir=None, settings=None, embedder=None, generator_=None):  # type: ignore[no-untyped-def]
        return real_open(cls, index_dir, settings, HashEmbedder(), generator)

    monkeypatch.setattr(Index, "open", classmethod(fake_open))
    monkeypatch.setenv("RAG_FALLBACK", "false")
    return str(tmp_path / "idx"), generator


def chat(index_dir: str, text: str, *args: str):
    return runner.invoke(app, ["chat", "--index-dir", index_dir, "--min-score", "0.2", *args], input=text)


def test_chat_answers_shows_sources_and_quits(fake_cli):
    index_dir, _ = fake_cli
    result = chat(index_dir, f"{CATS_Q}\n/sources\n/quit\nnever asked\n")
    assert result.exit_code == 0, result.stderr
    assert EchoGenerator.ANSWER in result.stdout
    assert "Sources" in result.stdout and "[1] cats.md" in result.stdout
    assert "> " in result.stderr and "never asked" not in result.stdout + result.stderr


def test_chat_follow_up_is_rewritten_and_sees_the_first_turn(fake_cli):
    index_dir, generator = fake_cli
    result = chat(index_dir, f"{CATS_Q}\nDo they sleep much?\n")  # ends at EOF
    assert result.exit_code == 0, result.stderr
    assert "searching: Do they sleep much? cats purr content" in result.stderr
    assert len(generator.prompts) == 2 and f"user: {CATS_Q}" in generator.prompts[1]
    assert result.stdout.count(EchoGenerator.ANSWER) == 2


def test_chat_commands_help_clear_and_unknown(fake_cli):
    index_dir, generator = fake_cli
    result = chat(index_dir, f"/sources\n/help\n{CATS_Q}\n/clear\nDo they purr when content?\n/nope\n/exit\n")
    assert result.exit_code == 0, result.stderr
    assert "no answer yet" in result.stderr and "/clear" in result.stderr
    assert "conversation cleared" in result.stderr and "unknown command /nope" in result.stderr
    assert "searching:" not in result.stderr, "after /clear a follow-up is a first turn"
    assert len(generator.prompts) == 2 and f"user: {CATS_Q}" not in generator.prompts[1]


def test_chat_error_for_one_question_does_not_end_the_session(fake_cli):
    index_dir, _ = fake_cli
    too_long = " ".join(["cats"] * 300) + "?"
    result = chat(index_dir, f"{too_long}\n{CATS_Q}\n", "--context-tokens", "300", "--max-tokens", "20")
    assert result.exit_code == 0, result.stderr
    assert "error:" in result.stderr and "--context-tokens" in result.stderr
    assert EchoGenerator.ANSWER in result.stdout


def test_chat_without_an_index_fails_cleanly(tmp_path: Path):
    result = runner.invoke(app, ["chat", "--index-dir", str(tmp_path / "nowhere")], input="hello?\n")
    assert result.exit_code == EXIT_ERROR and "no index at" in result.stderr
    assert result.stdout == ""


# --- `rag chat` with the real default models -------------------------------------------


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    docs = tmp_path_factory.mktemp("chat-docs")
    for name in ("tokenization.md", "retrieval-augmented-generation.md"):
        (docs / name).write_text((PROJECT / "corpus" / name).read_text(encoding="utf-8"), encoding="utf-8")
    index_dir = str(tmp_path_factory.mktemp("chat") / "index")
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", index_dir, "--quiet"])
    assert result.exit_code == 0, result.stderr
    return index_dir


def test_real_extractive_chat(real_index: str):
    result = runner.invoke(
        app, ["chat", "--index-dir", real_index, "--extractive"],
        input="How many entries are in GPT-2's token vocabulary?\n/sources\n/quit\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "50,257" in result.stdout and "tokenization.md" in result.stdout


def test_real_two_turn_chat(real_index: str):
    # In a child process: a crash inside llama.cpp then fails this test instead of ending the run.
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "chat", "--index-dir", real_index, "--max-tokens", "48"],
        input="What is byte-pair encoding?\nWhen was it invented?\n/sources\n",
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert "searching: When was it invented? byte-pair encoding" in result.stderr
    assert "error:" not in result.stderr and "Sources" in result.stdout
