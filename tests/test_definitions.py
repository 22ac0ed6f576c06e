"""Definitions and acronyms (rag/definitions.py): which questions ask for one, and where a
passage gives it, in the shapes people write."""

from __future__ import annotations

import pytest

from rag import definitions
from rag.definitions import Asked, asked, find, spells


@pytest.mark.parametrize("question, term, acronym", [
    ("What does RLHF stand for?", "RLHF", True),
    ("What is RAG short for?", "RAG", True),
    ("What is the full form of GPU?", "GPU", True),
    ("Define LoRA", "LoRA", True),
    ("What is a context window?", "context window", False),
    ("What are embeddings?", "embeddings", False),
    ("What is meant by a Larger Work?", "Larger Work", False),
])
def test_definition_questions_name_their_term(question, term, acronym):
    assert asked(question) == Asked(term, acronym)


@pytest.mark.parametrize("question", [
    "How many tokens does GPT-2 hold?", "What is the output of the command when it fails with an error code?",
    "What is why the model fails?", "Who wrote sort?"])
def test_other_questions_ask_for_no_definition(question):
    assert asked(question) is None


@pytest.mark.parametrize("text, expansion", [
    # the README's own failure: the cosine floor refused this although the passage defines it
    ("Models are then aligned with reinforcement learning from human feedback (RLHF), a recipe.",
     "reinforcement learning from human feedback"),
    ("RLHF, or reinforcement learning from human feedback, tunes a model.", "reinforcement learning from human feedback"),
    ("RLHF (short for reinforcement learning from human feedback) tunes a model.", "reinforcement learning from human feedback"),
    ("RLHF stands for reinforcement learning from human feedback.", "reinforcement learning from human feedback"),
])
def test_an_acronym_is_found_spelled_out_in_each_shape(text, expansion):
    found = find(Asked("RLHF", True), text)
    assert found is not None and found.how == "expansion" and text[found.start:found.end] == expansion
    assert text[found.sentence_start:found.sentence_end].startswith(text.split(".")[0][:10])


def test_letters_that_do_not_spell_the_acronym_are_not_an_expansion():
    assert find(Asked("RLHF", True), "We trained with human preference data (RLHF) on a cluster.") is None
    assert spells("GPU", "graphics processing unit") and spells("LoRA", "Low-Rank Adaptation")
    assert not spells("RLHF", "reinforcement learning human")


def test_a_defining_sentence_is_found_after_a_heading_line():
    text = ("Context Windows, the KV Cache and Long-Context Models\n"
            "A language model's context window is the largest number of tokens it can take into account at once.")
    found = definitions.find(asked("What is a context window?"), text)
    assert found is not None and found.how == "definition"
    assert text[found.start:found.end].startswith("the largest number of tokens")
    assert text[found.sentence_start:found.sentence_end].startswith("A language model's")


def test_a_sentence_that_only_mentions_the_term_is_no_definition():
    text = "Other chunks repeat the context window many times. Long context windows cost memory."
    assert definitions.find(asked("What is a context window?"), text) is None
