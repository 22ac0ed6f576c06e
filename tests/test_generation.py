"""The real llama.cpp generator: streaming stops where it should, and a chat turn does
not recompute the prompt prefix it shares with the turn before (the system prompt)."""

from __future__ import annotations

import pytest

from rag.generators.llama_cpp import LlamaCppGenerator
from rag.prompt import messages


@pytest.fixture(scope="module")
def gen() -> LlamaCppGenerator:
    return LlamaCppGenerator(None, 2)


def prompt_tokens_evaluated(gen: LlamaCppGenerator) -> int:
    import llama_cpp

    return int(llama_cpp.llama_perf_context(gen._model.ctx).n_p_eval)


def test_second_chat_turn_reuses_the_shared_prefix(gen: LlamaCppGenerator):
    import llama_cpp

    first = gen.render_chat(messages("What is a KV cache?", [], []))
    second = gen.render_chat(messages("Why does it grow?", [], [("What is a KV cache?", "It stores keys and values.")]))
    a, b = gen.tokenize(first), gen.tokenize(second)
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert shared > 20  # the template and system prompt
    "".join(gen.stream(first, 4, 0.0, 1024))
    llama_cpp.llama_perf_context_reset(gen._model.ctx)
    "".join(gen.stream(second, 4, 0.0, 1024))
    assert prompt_tokens_evaluated(gen) <= len(b) - shared + 1

    # a fresh model (no earlier turn) evaluates the whole prompt: the check above can fail
    gen._model.reset()
    llama_cpp.llama_perf_context_reset(gen._model.ctx)
    "".join(gen.stream(second, 4, 0.0, 1024))
    assert prompt_tokens_evaluated(gen) >= len(b) - 1


def test_stream_yields_pieces_and_honours_max_tokens(gen: LlamaCppGenerator):
    pieces = list(gen.stream(gen.render_chat(messages("Count from one to fifty.", [], [])), 6, 0.0, 1024, stop=False))
    assert pieces and len(gen.tokenize("".join(pieces))) <= 8
