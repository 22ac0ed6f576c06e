"""The sentence checks word overlap cannot make (rag/answer_checks.py), each built from a
failure seen on real answers, and their place in the answer policy."""

from __future__ import annotations

from rag import answer_checks as checks
from rag.answer import checked_sentences
from rag.types import Hit

FLASH = ("FlashAttention attacks the memory side of this problem. It computes exact attention in tiles "
         "held in the GPU's on-chip memory, so the full attention matrix is never written out.")
PROMPTING = "The text the model generates after the prompt is known as a completion."


def _hit(text: str, n: int = 1) -> Hit:
    return Hit(n, 1.0, n, "notes.md", None, "", 0, len(text), text, similarity=0.8)


def test_repeated_words_are_caught_and_ordinary_ones_pass():
    # the README's example answer, once marked supported
    assert checks.repeated_words("It attacks the memory side of this problem using on-chip on-chip memory.") == "repetition"
    assert checks.repeated_words("It uses the GPU's on-chip memory to compute attention in tiles.") == ""
    assert checks.repeated_words("He had had enough of that that evening.") == ""


def test_a_sentence_that_announces_a_list_it_does_not_give():
    assert checks.announces("FlashAttention is faster for three reasons:", ["It uses tiles."]) == "announces"
    assert checks.announces("It works like this:", []) == "announces"
    assert checks.announces("It is faster for three reasons:", ["One.", "Two.", "Three."]) == ""
    assert checks.announces("It has three parts.", []) == ""


def test_a_repeated_sentence():
    assert checks.repeats("FlashAttention computes attention in tiles.",
                          ["FlashAttention computes exact attention in tiles."]) == "repeat"
    assert checks.repeats("It never writes the full matrix.", ["FlashAttention computes attention in tiles."]) == ""


def test_a_name_given_to_the_wrong_subject():
    # seen from SmolLM2: "The prompt is known as a completion"
    assert checks.misrelates("The prompt is known as a completion.", PROMPTING) == "relation"
    assert checks.misrelates("The generated text is known as a completion.", PROMPTING) == ""
    assert checks.misrelates("The prompt is short.", PROMPTING) == ""
    # a leading phrase is not the subject, and one place that gives the name to it is enough
    assert checks.misrelates("A prompt is known as the input text.",
                             "In machine learning, a prompt is known as the input text of a model.") == ""
    assert checks.misrelates("The prompt is known as a completion.",
                             f"{PROMPTING} A prompt is sometimes known as a completion too.") == ""


def test_the_policy_leaves_such_sentences_out_with_their_reason():
    sources = [_hit(FLASH), _hit(PROMPTING, 2)]
    text = ("FlashAttention attacks the memory side of this problem using on-chip on-chip memory [1]. "
            "The prompt is known as a completion [2]. "
            "FlashAttention computes exact attention in tiles held in the GPU's on-chip memory [1]. "
            "FlashAttention computes exact attention in tiles held in on-chip memory [1].")
    checked = checked_sentences("How does FlashAttention save memory?", text, sources)
    assert [(s.supported, s.reason) for s in checked] == [
        (False, "repetition"), (False, "relation"), (True, ""), (False, "repeat")]


def test_a_list_announced_whose_items_are_all_left_out_is_left_out_too():
    # the README's first command once answered "... for three reasons:" and nothing after it
    # two items follow, so only the second pass (on the kept sentences) can catch it
    text = "Chunking happens for two reasons [1]:\n\n1. Dogs can fly on Mondays [1].\n2. Cats are purple [1]."
    source = _hit("Chunking happens for two reasons. First, embedding models have a maximum input length.")
    checked = checked_sentences("Why does chunking happen?", text, [source])
    assert [(s.supported, s.reason) for s in checked][0] == (False, "announces")
