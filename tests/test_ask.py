"""Index.ask wiring with fakes: prompt, streaming, citations, the retrieval floor."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import EchoGenerator, HashEmbedder

from rag import Settings, ingest
from rag.errors import ConfigError
from rag.index import Index
from rag.prompt import NOT_FOUND


@pytest.fixture
def index(tmp_path: Path) -> Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores.\n")
    settings = Settings.load({"index_dir": tmp_path / "idx", "min_score": 0.2, "fallback": False, "strategy": "llm"})
    ingest([docs], settings=settings, embedder=HashEmbedder())
    return Index.open(settings=settings, embedder=HashEmbedder(), generator=EchoGenerator())


def test_ask_streams_the_answer_and_cites_the_best_source(index: Index):
    pieces: list[str] = []
    answer = index.ask("Why do cats purr when content?", on_token=pieces.append)
    assert "".join(pieces).strip() == answer.text == EchoGenerator.ANSWER
    assert answer.answerable
    assert [c.hit.source for c in answer.citations] == ["cats.md"]
    assert answer.sources[0].source == "cats.md"
    data = answer.to_dict()
    assert set(data) >= {"question", "answer", "answerable", "citations", "hits", "models", "timings_ms"}
    assert set(data["timings_ms"]) >= {"retrieve", "generate", "total"}
    assert data["models"] == {"embedder": "test/hash-embedder", "llm": "echo"}
    # The prompt the model saw numbers the sources and repeats the question.
    prompt = index.generator.prompts[-1]  # type: ignore[attr-defined]
    assert "Source 1 (cats.md" in prompt and prompt.count("Why do cats purr when content?") == 2


def test_question_far_from_every_chunk_is_not_sent_to_the_model(index: Index):
    answer = index.ask("quantum chromodynamics lattice gauge")
    assert not answer.answerable and answer.text == NOT_FOUND
    assert answer.citations == () and answer.sources == ()
    assert index.generator.prompts == []  # type: ignore[attr-defined]


def test_empty_question_is_an_error(index: Index):
    with pytest.raises(ConfigError):
        index.ask("   ")


def test_unsupported_llm_answer_falls_back_to_quotes(index: Index):
    index.settings = index.settings._merged({"fallback": True})
    answer = index.ask("Why do cats purr when content?")
    # "The sources say so [1]." shares no content with the cats source: not supported.
    assert answer.strategy == "fallback" and answer.draft == EchoGenerator.ANSWER
    assert answer.answerable and "Cats sleep most of the day and purr when content." in answer.text
    assert [c.hit.source for c in answer.citations if c.valid] == ["cats.md"]
    assert answer.to_dict()["llm_answer"] == EchoGenerator.ANSWER
    # the model's sentence is kept, unsupported, before the quotes that replaced it
    assert [(s.text, s.supported, s.reason) for s in answer.sentences][0] == ("The sources say so .", False, "unsupported")
    assert all(s.supported for s in answer.sentences[1:]) and len(answer.sentences) > 1


def test_grounded_answer_adds_the_best_passage_the_model_left_out(index: Index):
    grounded = Index(index.store, index.settings._merged({"strategy": "grounded"}), HashEmbedder(), EchoGenerator())
    pieces: list[str] = []
    answer = grounded.ask("Why do cats purr when content?", on_token=pieces.append)
    assert answer.strategy == "llm+quote" and "".join(pieces) == answer.text
    assert answer.text.startswith(EchoGenerator.ANSWER)
    assert answer.text.endswith("From the sources: Cats sleep most of the day and purr when content. [1]")
    added = answer.sentences[-1]
    assert added.supported and added.citations == (1,) and answer.sources[0].source == "cats.md"
    page = index.store.page_text("cats.md", None)
    assert page[added.quotes[0].start:added.quotes[0].end] == "Cats sleep most of the day and purr when content."


def test_an_answer_that_already_says_it_gets_no_quote(index: Index):
    class Restating(EchoGenerator):
        def stream(self, prompt, max_tokens, temperature, n_ctx):
            yield "Cats sleep most of the day and purr when content [1]."

    grounded = Index(index.store, index.settings._merged({"strategy": "grounded"}), HashEmbedder(), Restating())
    answer = grounded.ask("Why do cats purr when content?")
    assert answer.strategy == "llm" and "From the sources" not in answer.text
    assert [s.supported for s in answer.sentences] == [True]


def test_grounded_adds_every_extracted_passage_the_answer_leaves_out():
    from rag.answer import add_source_passages
    from rag.types import Hit
    from rag.types import Quote, Sentence
    from rag.verify import Extract

    def hit(n: int, text: str) -> Hit:
        return Hit(rank=n, score=1.0, chunk_id=10 + n, source=f"s{n}.md", page=None, heading="", start=0,
                   end=len(text), text=text)

    hits = [hit(1, "LoRA trains two thin matrices A and B."), hit(2, "LoRA starts matrix B at zeros, matrix A at random.")]
    quotes = Extract(tuple(Sentence(h.text, (n,), True, (Quote(n, h.source, None, 0, h.end, h.text, 1.0),))
                           for n, h in enumerate(hits, start=1)), 1.0)
    prompt_sources = hits[::-1]  # the prompt numbers them the other way round
    text, sentences = add_source_passages("It trains two thin matrices A and B [2].", (), quotes, hits, prompt_sources)
    # the passage the answer restates is not repeated; the other is added, renumbered to the prompt
    assert text.endswith("From the sources: LoRA starts matrix B at zeros, matrix A at random. [1]")
    assert [s.citations for s in sentences] == [(1,)]
    assert add_source_passages("Anything.", (), quotes, hits, []) is None  # no passage was in the prompt
