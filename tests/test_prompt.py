"""Prompt building: never over the budget, best sources first, clear error for a huge question."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import EchoGenerator
from rag.errors import ConfigError
from rag.prompt import NOT_FOUND, SYSTEM_PROMPT, _user_message, build_prompt, format_source
from rag.types import Hit


class CharCountingModel(EchoGenerator):
    """Counts 4 characters as a token, so the tokens of joined text exceed the sum of the parts."""

    def count_tokens(self, text: str) -> int:
        return (len(text) + 3) // 4


def hit(rank: int, n_words: int, page: int | None = None, heading: str = "") -> Hit:
    text = " ".join(f"r{rank}w{i}" for i in range(n_words))
    return Hit(rank, 1.0 - rank / 100, rank * 10, f"doc{rank}.md", page, heading, 0, len(text), text)


def numbered_sources(prompt_text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^Source (\d+) \(", prompt_text, flags=re.M)]


def test_all_hits_fit_in_rank_order(echo_generator):
    hits = [hit(i, 20) for i in range(1, 6)]
    p = build_prompt("What is r3w4?", hits, echo_generator, 4096, 200)
    assert p.sources == tuple(hits)
    assert numbered_sources(p.text) == [1, 2, 3, 4, 5]
    positions = [p.text.index(h.text) for h in hits]
    assert positions == sorted(positions)
    assert SYSTEM_PROMPT in p.text and "What is r3w4?" in p.text
    assert p.tokens == echo_generator.count_tokens(p.text) <= p.budget == 4096 - 200


def test_too_long_hit_is_skipped_and_shorter_next_one_used(echo_generator):
    hits = [hit(1, 30), hit(2, 5000), hit(3, 30)]
    p = build_prompt("q?", hits, echo_generator, 1000, 100)
    assert p.sources == (hits[0], hits[2])
    assert numbered_sources(p.text) == [1, 2]
    assert "Source 2 (doc3.md)" in p.text
    assert p.tokens <= 900


def test_budget_uses_the_smaller_of_setting_and_model_context():
    small = EchoGenerator(context_size=300)
    hits = [hit(i, 50) for i in range(1, 10)]
    p = build_prompt("q?", hits, small, 4096, 100)
    assert p.budget == 200
    assert small.count_tokens(p.text) <= 200
    assert 0 < len(p.sources) < len(hits)


def test_page_and_heading_are_named_in_the_source():
    h = hit(1, 3, page=4, heading="Intro > Scope")
    block = format_source(1, h)
    assert block.startswith("Source 1 (doc1.md, page 4, section Intro > Scope):\n")
    assert h.text in block


def test_no_hits_fit_gives_no_sources_prompt(echo_generator):
    p = build_prompt("q?", [hit(1, 3000)], echo_generator, 1000, 100)
    assert p.sources == ()
    assert "(no sources)" in p.text
    assert NOT_FOUND in p.text


def test_too_long_question_raises_config_error(echo_generator):
    question = " ".join(["why"] * 2000)
    with pytest.raises(ConfigError, match="question") as info:
        build_prompt(question, [hit(1, 5)], echo_generator, 1536, 192)
    assert "1536" in str(info.value) or "1344" in str(info.value)


@settings(max_examples=200, deadline=None, database=None)
@given(
    lengths=st.lists(st.integers(0, 600), min_size=0, max_size=12),
    context=st.integers(300, 5000),
    model_context=st.integers(300, 5000),
    answer=st.integers(1, 250),
    chars=st.booleans(),
)
def test_property_prompt_never_exceeds_budget(lengths, context, model_context, answer, chars):
    model = CharCountingModel(model_context) if chars else EchoGenerator(model_context)
    hits = [hit(i, n) for i, n in enumerate(lengths, start=1)]
    budget = min(context, model_context) - answer
    empty = model.count_tokens(model.render_chat([{"role": "system", "content": SYSTEM_PROMPT},
                                                  {"role": "user", "content": _user_message("q?", [])}]))
    if budget < empty:
        with pytest.raises(ConfigError):
            build_prompt("q?", hits, model, context, answer)
        return
    p = build_prompt("q?", hits, model, context, answer)
    assert p.budget == budget
    assert p.tokens == model.count_tokens(p.text) <= budget
    # Sources are a subsequence of the hits, in rank order, numbered from 1.
    ranks = [h.rank for h in p.sources]
    assert ranks == sorted(ranks) and set(ranks) <= set(range(1, len(hits) + 1))
    assert numbered_sources(p.text) == list(range(1, len(p.sources) + 1))
    # The best hit goes in whenever a prompt with it alone fits. The slack of 8 covers
    # build_prompt's conservative estimate (it counts the "(no sources)" placeholder and a
    # separator on top of the block), which can drop a hit that would fit by a few tokens.
    if hits:
        alone = model.render_chat([{"role": "system", "content": SYSTEM_PROMPT},
                                   {"role": "user", "content": _user_message(
        "q?", [format_source(1, hits[0])])}])
        if model.count_tokens(alone) + 8 <= budget:
            assert p.sources and p.sources[0] == hits[0]
