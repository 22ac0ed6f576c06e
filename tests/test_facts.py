"""Names and numbers in answer checking (rag/facts.py, issue 15 item 5): a sentence is
supported only when its source states its numbers of the same thing and mentions its names."""

from __future__ import annotations

import pytest

from rag.facts import clauses, numbers, unbound
from rag.types import Hit
from rag.verify import verify

TYRES = "The front tyre should be inflated to 65 psi and the rear tyre to 70 psi. Check them monthly."
TABLE = "Tyre: front; Pressure (psi): 65\nTyre: rear; Pressure (psi): 70"


def hit(n: int, text: str, source: str = "bike.md") -> Hit:
    return Hit(rank=n, score=1.0 / n, chunk_id=n, source=source, page=None, heading="", start=0, end=len(text),
               text=text)


def test_numbers_read_values_and_units():
    assert [(n.value, n.unit) for n in numbers("65 psi, 7.3 billion, 1,000 tokens, 40% and seven layers")] == [
        ("65", "psi"), ("7.3", "billion"), ("1000", "token"), ("40", "%"), ("7", "layer")]
    assert [(n.value, n.unit) for n in numbers("Mistral 7B beats Llama 2 13B, not GPT-4")] == [
        ("7", "billion"), ("2", ""), ("13", "billion")]


def test_clauses_cut_statements_but_keep_table_rows():
    assert clauses(TYRES) == ["The front tyre should be inflated to 65 psi", "the rear tyre to 70 psi.",
                              "Check them monthly."]
    assert clauses(TABLE) == ["Tyre: front; Pressure (psi): 65", "Tyre: rear; Pressure (psi): 70"]


@pytest.mark.parametrize("passage", [TYRES, TABLE])
def test_a_value_of_the_other_thing_is_unbound(passage: str):
    assert unbound("The rear tyre takes 65 psi.", passage) == ["65 psi"]
    assert unbound("The rear tyre takes 70 psi.", passage) == []
    assert unbound("The front tyre takes 65 psi.", passage) == []


def test_missing_values_units_and_names():
    assert unbound("The rear tyre takes 75 psi.", TYRES) == ["75 psi"]
    assert unbound("The rear tyre takes 70 kPa.", "The rear tyre takes 70 psi.") == ["kPa", "70 kpa"]
    assert unbound("The rear tyre takes 70 psi, says Michelin.", TYRES) == ["Michelin"]
    assert unbound("RLHF aligns the model.", "Reinforcement learning from human feedback aligns it.") == []
    assert unbound("According to Source 1, the rear tyre takes 70 psi.", TYRES) == []


def test_binding_is_asked_only_where_the_passage_shows_it():
    both = "Front and rear tyres take 65 psi, 70 psi respectively."
    assert unbound("The rear tyre takes 65 psi.", both) == []  # one clause: occurrence is all we can check
    years = "GPT-2 was released in 2019. Llama came out in 2023."
    assert unbound("GPT-2 was released in 2023.", years) == ["2023"]
    assert unbound("GPT-2 was released in 2019.", years) == []


def test_verify_marks_the_wrong_tyre_pressure_unsupported():
    source = [hit(1, TYRES)]
    wrong, right = verify("The rear tyre pressure is 65 psi [1]. The rear tyre pressure is 70 psi [1].", source)
    assert not wrong.supported and wrong.reason == "mismatch"
    assert right.supported and right.reason == "" and "70 psi" in right.quotes[0].text


def test_verify_credits_an_uncited_sentence_only_with_the_source_that_states_its_number():
    sources = [hit(1, "The front tyre takes 65 psi.", "front.md"), hit(2, "The rear tyre takes 70 psi.", "rear.md")]
    (s,) = verify("The rear tyre takes 70 psi.", sources)
    assert s.supported and s.citations == (2,)
    (s,) = verify("The rear tyre takes 75 psi.", sources)
    assert not s.supported and s.reason == "mismatch"


def test_the_elliptical_phrasing_of_the_tyre_case():
    passage = "The front tyre takes 65 psi and the rear tyre 70 psi."
    assert unbound("The rear tyre takes 65 psi.", passage) == ["65 psi"]  # 65 is the front tyre's
    assert unbound("The rear tyre takes 70 psi.", passage) == []
    assert unbound("The front tyre takes 65 psi.", passage) == []


def test_a_claim_may_give_both_values():
    passage = "It was published by Philip Gage in 1994 and adapted to machine translation in 2015."
    assert unbound("Gage published it in 1994, and it was adapted to translation in 2015.", passage) == []


def test_units_written_onto_the_number_and_currencies():
    assert unbound("The limit is 100 MB.", "The limit is 100MB.") == []
    assert unbound("It costs 5 dollars.", "It costs $5.") == []
    assert unbound("The limit is 100 GB.", "The limit is 100MB.") != []
    assert [(n.value, n.unit) for n in numbers("the 11th century, 16kHz, GPT-4, float32")] == [("11", ""), ("16", "khz")]
