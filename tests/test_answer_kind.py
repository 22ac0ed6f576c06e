"""The answer-kind check (rag/answer_kind.py): a question that asks for a number, a year
or a name is answered only when a passage holds one about its subject."""

from __future__ import annotations

import pytest

from rag.answer_kind import expected, stated
from rag.types import Hit


def hit(text: str, heading: str = "") -> Hit:
    return Hit(rank=1, score=1.0, chunk_id=1, source="a.md", page=None, heading=heading, start=0, end=len(text),
               text=text)


@pytest.mark.parametrize("question, kind", [
    ("How many parameters does GPT-4 have?", "number"),
    ("What BLEU score did the big model reach?", "number"),
    ("What context window length was Llama 3 trained with?", "number"),
    ("In what year did Malkov publish HNSW?", "year"),
    ("When was the Duchy of Normandy founded?", "year"),
    ("Who invented the LSTM network?", "name"),
    ("Which research group created Transformer-XL?", "name"),
    ("Who manages a construction job?", None),  # wants a description ("an architect"), not a name
    ("Which setting decides how many clusters each query searches?", None),  # the first wh-phrase asks for a setting
    ("What is a context window?", None),
    ("Why does RAG split documents into chunks?", None),
])
def test_the_kind_of_answer_a_question_asks_for(question: str, kind: str | None):
    want = expected(question)
    assert (want.kind if want else None) == kind


def test_a_number_about_something_else_is_no_answer():
    text = "When OpenAI released GPT-4 in March 2023 it came in two versions, with 8,192 and 32,768 tokens."
    assert not stated("How many parameters does GPT-4 have?", [hit(text)])
    assert stated("How many tokens did GPT-4 take as context?", [hit(text)])


def test_the_subject_may_be_in_the_sentence_before_or_the_heading():
    text = "Mistral 7B is a small open model. It has 7.3 billion parameters."
    assert stated("How many parameters does Mistral 7B have?", [hit(text)])
    assert stated("How many parameters does Mistral 7B have?", [hit("It has 7.3 billion parameters.", "Mistral 7B")])
    assert not stated("How many parameters does Mistral 7B have?", [hit("Llama 2 has 70 billion parameters.")])


def test_a_unit_that_names_what_is_asked_counts():
    text = "The big model scored 28.4 BLEU on the WMT 2014 English-to-German test set."
    assert stated("What BLEU score did the large original transformer reach on WMT 2014 English-to-German?", [hit(text)])


def test_years_and_names():
    assert stated("When was byte-pair encoding invented?",
                  [hit("The most used method is byte-pair encoding (BPE). It began as a compression technique "
                       "published by Philip Gage in 1994.")])
    assert not stated("In what year did Malkov and Yashunin publish the HNSW algorithm?",
                      [hit("HNSW was described by Yury Malkov and Dmitry Yashunin.")])
    assert stated("Who proposed nucleus sampling?",
                  [hit("Nucleus sampling was proposed by Ari Holtzman and colleagues.")])
    assert not stated("Who invented the LSTM network?",
                      [hit("The Transformer was introduced by Ashish Vaswani. It dropped the recurrence LSTMs use.")])


def test_questions_of_no_checkable_kind_pass():
    assert stated("What is a context window?", [hit("Nothing relevant at all.")])


def test_amounts_in_words_count_for_how_long():
    assert stated("How long does a full charge take?", [hit("A full charge takes about an hour.")])
    assert expected("How often should the filter be cleaned?") is None  # "monthly" is its answer
