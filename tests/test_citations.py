"""Citation parsing, attribution of uncited sentences, and refusal detection."""

from __future__ import annotations

from rag.citations import citations_for, cited_numbers, is_refusal
from rag.prompt import NOT_FOUND
from rag.text import support
from rag.types import Hit
from rag.verify import verify


def hit(n: int, text: str, source: str = "a.md") -> Hit:
    return Hit(rank=n, score=0.9 - n / 10, chunk_id=n, source=source, page=None, heading="", start=0, end=len(text), text=text)


SOURCES = [
    hit(1, "The KV cache stores the keys and values of earlier tokens so they are not recomputed.", "kv.pdf"),
    hit(2, "Top-p sampling keeps the smallest set of tokens whose probabilities add up to p.", "sampling.txt"),
]


def extract_citations(text: str, sources: list[Hit]):
    """The citations `ask` gives an answer: from its checked sentences."""
    return citations_for(text, verify(text, sources), sources)


def test_cited_numbers_in_order_once_each():
    assert cited_numbers("A [2]. B [1, 3]. C [2][4]; D [ 5 ; 6 ].") == [2, 1, 3, 4, 5, 6]
    assert cited_numbers("No citations here, not even [a] or [1.5].") == []


def test_explicit_citations_map_to_sources_and_unknown_numbers_are_kept():
    cites = extract_citations("It stores keys [1]. It also does magic [7].", SOURCES)
    assert [(c.id, c.valid, c.attributed) for c in cites] == [(1, True, False), (7, False, False)]
    assert cites[0].hit.source == "kv.pdf"
    assert cites[1].to_dict()["source"] is None and cites[1].to_dict()["valid"] is False


def test_uncited_sentence_that_restates_a_source_is_attributed_to_it():
    cites = extract_citations("Top-p sampling keeps the smallest set of tokens whose probabilities reach p.", SOURCES)
    assert [(c.id, c.attributed) for c in cites] == [(2, True)]


def test_generic_or_unrelated_sentences_get_no_citation():
    assert extract_citations("This is an important topic for many reasons.", SOURCES) == ()
    assert extract_citations("Brazil won the football world cup with a late goal.", SOURCES) == ()


def test_support_is_the_share_of_content_words_found():
    assert support("keys values cache", SOURCES[0].text) == 1.0
    assert support("bananas oranges", SOURCES[0].text) == 0.0


def test_refusals_are_recognised():
    assert is_refusal(NOT_FOUND)
    assert is_refusal("I'm sorry, the sources do not contain information about that.")
    assert is_refusal("")
    assert not is_refusal("The KV cache stores keys and values [1].")
