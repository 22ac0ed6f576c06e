"""The answer locator (rag/answer_locate.py) on passages built here: the span head, word
overlap and definitions each decide where the others would be wrong."""

from __future__ import annotations

from rag.answer_locate import candidates, holds, locate
from rag.types import Hit, Reading

STEPS = ("Fine-tuning starts from a pretrained model. The first step of fine-tuning is collecting "
         "demonstrations written by people. The step of fine-tuning that follows trains on them.")


def _hit(text: str, n: int = 1, start: int = 0, similarity: float = 0.5) -> Hit:
    return Hit(n, 1.0, n, f"doc{n}.md", None, "", start, start + len(text), text, similarity=similarity)


def test_the_span_head_picks_its_sentence_over_one_sharing_more_words():
    # The first and third sentences share as many of the question's words as the second;
    # the reader's span ("collecting demonstrations") is in the second.
    question = "How does fine-tuning begin?"
    a = STEPS.index("collecting")
    b = STEPS.index(" written")
    reading = Reading(2.0, ((a, b, 9.0), (0, 10, 1.0)))
    span = locate(question, [_hit(STEPS, start=100)], [reading])
    assert span is not None and span.how == "reader" and span.text == "collecting demonstrations"
    assert span.start == 100 + a and span.end == 100 + b  # offsets into the page, not the chunk
    assert span.sentence.startswith("The first step of fine-tuning is")


def test_without_a_reader_word_overlap_decides():
    span = locate("Which step of fine-tuning follows?", [_hit(STEPS)], None)
    assert span is not None and span.how == "sentence" and "follows trains" in span.sentence


def test_a_definition_beats_passages_that_repeat_the_term():
    # dense rank 1, lexical rank 29 in the issue: other chunks repeat the term more often
    noisy = _hit("The context window, the context window and again the context window fill up.", 1, similarity=0.6)
    defining = _hit("A context window is the largest number of tokens a model can read at once.", 2, similarity=0.7)
    span = locate("What is a context window?", [noisy, defining], None)
    assert span is not None and span.how == "definition" and span.chunk_id == 2
    assert span.text.startswith("the largest number of tokens")


def test_the_spans_of_all_passages_compete():
    first, second = _hit("Paris is large. Its mayor is Anne.", 1), _hit("Lyon is smaller. Its mayor is Bruno.", 2)
    weak, strong = Reading(0.0, ((29, 33, 1.0),)), Reading(0.0, ((30, 35, 8.0),))
    found = candidates("Who is the mayor?", [first, second], [weak, strong])
    assert max(found, key=lambda c: c.span).hit == 1
    assert locate("Who is the mayor?", [first, second], [weak, strong]).text == "Bruno"


def test_holds_checks_the_span_words():
    span = locate("What is a context window?", [_hit("A context window is the token budget.")], None)
    assert holds(span, "It is the token budget of the model.") and not holds(span, "It is the memory.")


def test_a_fact_question_gives_the_llm_the_located_sentence_first():
    from rag.answer_locate import focused

    hits = [_hit("Other text about models.", 1), _hit(STEPS, 2, start=40)]
    span = locate("How many steps does fine-tuning have?", hits, None)
    first, *rest = focused("How many steps does fine-tuning have?", hits, span)
    assert first.chunk_id == span.chunk_id and first.text == STEPS[span.sentence_start - 40:span.sentence_end - 40]
    assert first.start == span.sentence_start and [h.chunk_id for h in rest] == [1]
    assert focused("Why is fine-tuning useful?", hits, span) == hits  # not a fact question: unchanged


def test_the_pool_adds_the_dense_and_lexical_tops_once(tmp_path):
    from fakes import HashEmbedder, make_folder, settings

    from rag import Index, ingest
    from rag.retrieve import Retriever

    s = settings(tmp_path)
    ingest([make_folder(tmp_path / "docs")], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder())
    retriever = Retriever(index.store, index.embedder)
    hits = retriever.search("cats purr", 1)
    pool = retriever.pool("cats purr", hits, 3)
    ids = [h.chunk_id for h in pool]
    assert ids[0] == hits[0].chunk_id and len(ids) == len(set(ids))
    dense = {h.chunk_id for h in retriever.search("cats purr", 3, "dense")}
    lexical = {h.chunk_id for h in retriever.search("cats purr", 3, "lexical")}
    assert set(ids) == dense | lexical | {hits[0].chunk_id}
    index.close()


def test_a_span_of_punctuation_falls_back_to_its_sentence():
    hit = _hit(STEPS, start=100)
    comma = STEPS.index(",") if "," in STEPS else STEPS.index(".")
    span = locate("How does fine-tuning begin?", [hit], [Reading(1.0, ((comma, comma + 1, 9.0),))])
    assert span.how == "sentence" and span.text == span.sentence
    assert STEPS[span.start - 100:span.end - 100] == span.text


def test_locate_off_locates_nothing(tmp_path):
    from fakes import HashEmbedder, make_folder, settings

    from rag import Index, ingest

    s = settings(tmp_path, locate=False)
    ingest([make_folder(tmp_path / "docs")], settings=s, embedder=HashEmbedder())
    answer = Index.open(settings=s, embedder=HashEmbedder()).ask("Why do cats purr?", extractive=True)
    assert answer.answer_span is None and answer.gate is None
