"""Streamed decode rate against llama.cpp's own, and prefix reuse between chat turns.

For each of a few corpus questions the default model answers through
`LlamaCppGenerator.stream`, the path `rag ask` streams from, greedy and with no stop
string, for `--tokens` tokens. Our rate is the tokens after the first divided by the
wall time from the first piece to the last, so it includes every Python step between
llama.cpp and the caller. The reference, from the same calls, is llama.cpp's own eval
rate (its perf counters: n_eval / t_eval_ms). Target: ours >= 0.90x llama.cpp's.

The second part asks two chat turns whose prompts share the system prompt and prints
how many prompt tokens llama.cpp evaluated for the second turn against its length: the
shared prefix must not be computed again.

    python bench/decode_rate.py [--tokens 128] [--questions 5] [--model GGUF]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, questions  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.generators.llama_cpp import LlamaCppGenerator  # noqa: E402
from rag.prompt import messages  # noqa: E402

TARGET = 0.90
N_CTX = 2048


def perf(gen: LlamaCppGenerator):
    import llama_cpp

    return llama_cpp.llama_perf_context(gen._model.ctx)


def reset_perf(gen: LlamaCppGenerator) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(gen._model.ctx)


def one(gen: LlamaCppGenerator, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(our tokens/s, llama.cpp's eval tokens/s, tokens generated) for one streamed answer."""
    gen._load(N_CTX)
    gen._model.reset()  # no prefix reuse here: every call decodes the same way
    reset_perf(gen)
    stamps = []
    for _ in gen.stream(prompt, tokens, 0.0, N_CTX, stop=False):
        stamps.append(time.perf_counter())
    p = perf(gen)
    n = int(p.n_eval)
    ours = (n - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return ours, n / (p.t_eval_ms / 1000), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    settings = Settings.load({"llm_model": args.model})
    gen = LlamaCppGenerator(settings.gguf_path, settings.n_threads)
    items = [q for q in questions() if q["answerable"]][: args.questions]
    prompts = [gen.render_chat(messages(q["question"], [], [])) for q in items]
    one(gen, prompts[0], 8)  # load and warm up
    rows = [one(gen, p, args.tokens) for p in prompts]
    ours = statistics.median(r[0] for r in rows)
    native = statistics.median(r[1] for r in rows)
    print(f"model {gen.name}, {settings.n_threads} threads; {machine()}")
    print(f"decode, median of {len(rows)} answers of {args.tokens} tokens:")
    print(f"  streamed through rag:  {ours:6.1f} tokens/s")
    print(f"  llama.cpp eval (ref.): {native:6.1f} tokens/s")
    print(f"  ratio {ours / native:.3f}  target >= {TARGET:.2f}: {'PASS' if ours / native >= TARGET else 'FAIL'}")

    # Two chat turns: the second prompt shares the system prompt (and template) with the first.
    gen._model.reset()
    first = gen.render_chat(messages(items[0]["question"], [], []))
    second = gen.render_chat(messages(items[1]["question"], [], [(items[0]["question"], "An earlier answer.")]))
    for _ in gen.stream(first, 4, 0.0, N_CTX):
        pass
    reset_perf(gen)
    for _ in gen.stream(second, 4, 0.0, N_CTX):
        pass
    total = gen.count_tokens(second)
    shared = sum(1 for _ in zip_equal(gen.tokenize(first), gen.tokenize(second)))
    evaluated = int(perf(gen).n_p_eval)
    print(f"second chat turn: {total} prompt tokens, {shared} shared with the first turn; "
          f"llama.cpp evaluated {evaluated} ({'prefix reused' if evaluated <= total - shared + 1 else 'RECOMPUTED'})")


def zip_equal(a, b):
    for x, y in zip(a, b):
        if x != y:
            return
        yield x


if __name__ == "__main__":
    main()
