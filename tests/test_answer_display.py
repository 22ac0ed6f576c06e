"""The answer shows only what the sources support (rag/answer.py), and says why it abstains.

Index.ask with the hash embedder and a generator that writes a fixed text, as a small
model does: a supported sentence among prompt echoes, a copied source fence, a restated
question and a made-up claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import EchoGenerator, HashEmbedder

from rag import Settings, ingest
from rag.answer import is_echo, restates, supported_text
from rag.index import Index
from rag.prompt import NOT_FOUND

QUESTION = "Why do cats purr when content?"
GOOD = "Cats sleep most of the day and purr when content [1]."
ECHO = "Question: Why do cats purr when content?"
INSTRUCTIONS = "Answer in one to three sentences, citing sources like [1]."
FENCE = "Source 1 (cats.md):\n<<<\nCats sleep most of the day and purr when content.\n>>>"
RESTATED = "Cats purr when content [1]."
MADE_UP = "Dogs can fly over the moon [1]."
DRAFT = f"{ECHO}\n{INSTRUCTIONS}\n{FENCE}\n{GOOD} {RESTATED} {MADE_UP}"


class Writes(EchoGenerator):
    """Answers every prompt with `text`, in pieces of a few characters."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def stream(self, prompt, max_tokens, temperature, n_ctx):
        self.prompts.append(prompt)
        for i in range(0, len(self.text), 7):
            yield self.text[i:i + 7]


@pytest.fixture
def make_index(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores.\n")
    base = Settings.load({"index_dir": tmp_path / "idx", "min_score": 0.2, "strategy": "llm"})
    ingest([docs], settings=base, embedder=HashEmbedder())

    def make(text: str = DRAFT, **settings) -> Index:
        return Index(Index.open(settings=base).store, base._merged(settings), HashEmbedder(), Writes(text))

    return make


def test_the_answer_keeps_only_the_supported_sentences(make_index):
    answer = make_index().ask(QUESTION)
    assert answer.text == GOOD and answer.answerable and answer.strategy == "llm"
    assert answer.draft == DRAFT and answer.to_dict()["llm_answer"] == DRAFT
    verdicts = [(s.supported, s.reason) for s in answer.sentences]
    # the question, the instructions, the source's header and the source text copied inside its fence
    assert verdicts == [(False, "echo")] * 4 + [(True, ""), (False, "question"), (False, "unsupported")]
    data = answer.to_dict()
    assert [s["reason"] for s in data["sentences"]] == ["echo"] * 4 + [None, "question", "unsupported"]
    assert [c.id for c in answer.citations] == [1] and answer.citations[0].hit.source == "cats.md"


def test_show_unsupported_keeps_the_whole_answer(make_index):
    pieces: list[str] = []
    answer = make_index(show_unsupported=True).ask(QUESTION, on_token=pieces.append)
    assert answer.text == DRAFT == "".join(pieces), "streamed as it was written"
    assert [s.supported for s in answer.sentences] == [False] * 4 + [True, False, False]


def test_the_checked_answer_comes_in_one_piece_and_the_draft_as_written(make_index):
    pieces: list[str] = []
    drafted: list[str] = []
    answer = make_index().ask(QUESTION, on_token=pieces.append, on_draft=drafted.append)
    assert pieces == [GOOD] == [answer.text]
    assert "".join(drafted) == DRAFT and len(drafted) > 1


def test_grounded_adds_passages_after_the_supported_sentences_only(make_index):
    answer = make_index(f"{ECHO} {MADE_UP}\nCats sleep a lot [1].", strategy="grounded").ask(QUESTION)
    assert answer.strategy == "llm+quote"
    assert answer.text == ("Cats sleep a lot [1].\n\n"
                           "From the sources: Cats sleep most of the day and purr when content. [1]")
    assert [s.supported for s in answer.sentences] == [False, False, True, True]


def test_nothing_supported_left_gives_the_extractive_answer(make_index):
    answer = make_index(f"{ECHO} {INSTRUCTIONS} {RESTATED}").ask(QUESTION)
    assert answer.strategy == "fallback" and answer.text == "Cats sleep most of the day and purr when content. [1]"
    assert answer.draft.startswith(ECHO)
    assert [s.supported for s in answer.sentences] == [False, False, False, True]


def test_without_the_fallback_an_unsupported_answer_is_kept_whole(make_index):
    answer = make_index(MADE_UP, fallback=False).ask(QUESTION)
    assert answer.text == MADE_UP and answer.strategy == "llm"


def test_echoes_and_restatements():
    assert is_echo("Question: What is BPE?") and is_echo("Sources:") and is_echo("Source 4 (file.txt): <<< BPE merges")
    assert is_echo("Answer in one to three sentences, citing sources like .")
    assert not is_echo("Answer: BPE merges the most frequent pair.") and not is_echo("The model follows instructions.")
    assert restates("What does RLHF stand for?", "RLHF stands for")
    assert restates("What does RLHF stand for?", "The answer to the question what RLHF stands for is")
    assert restates("What is BPE?", "What is BPE?") and restates("What is BPE?", "Why does it matter?")
    assert not restates("What does RLHF stand for?", "RLHF stands for reinforcement learning from human feedback")
    assert not restates("Is FAISS a library?", "FAISS is a library"), "a yes/no question is answered by restating it"


def test_supported_text_keeps_the_sentences_as_written():
    from rag.types import Sentence

    text = "First claim [1]. Made up [2].\nSecond claim.\n[2]"
    checked = (Sentence("First claim .", (1,), True), Sentence("Made up .", (2,), False),
               Sentence("Second claim.", (2,), True))
    assert supported_text(text, checked) == "First claim [1].\nSecond claim.\n[2]"


@pytest.mark.parametrize("question, settings, reason", [
    ("Why do dogs purr on Jupiter?", {}, "missing_terms"),
    ("quantum chromodynamics lattice gauge", {"gate": ""}, "far"),
    ("Why do cats purr when content?", {"min_coverage": 1.01, "gate": ""}, "not_covered"),
])
def test_an_abstention_says_why(make_index, question, settings, reason):
    answer = make_index(**settings).ask(question)
    assert answer.strategy == "abstain" and answer.text == NOT_FOUND and answer.abstain_reason == reason
    assert answer.to_dict()["abstain_reason"] == reason


@pytest.mark.parametrize("says", [NOT_FOUND, "", "I cannot find that in [1], sorry."])
def test_a_model_that_refuses_is_an_abstention_with_its_reason(make_index, says: str):
    answer = make_index(says).ask(QUESTION)
    assert not answer.answerable and answer.abstain_reason == "model_refused"
    assert answer.text == NOT_FOUND and answer.draft == says and answer.citations == ()
