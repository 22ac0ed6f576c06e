"""Context budget against answer quality and time to first token, to choose the default.

For each budget (`--context-tokens`) the question set is asked with the default strategy
and model, retrieving as many chunks as the budget can hold (k grows with it), and the
script prints answer accuracy and citation precision (as `rag eval --qa` scores them),
the number of sources that went into the prompt, and the time from the question to the
first streamed token, for the questions that reached the model. The reference row is the
default budget, measured in the same run; the last column is each budget's time to
first token as a ratio of it.

    python bench/context_curve.py [--budgets 768,1024,1536,2048,3072] [--index-dir DIR] [--model GGUF]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, machine, questions  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag.config import DEFAULT_CONTEXT_TOKENS, DEFAULT_MAX_ANSWER_TOKENS, DEFAULT_TOP_K  # noqa: E402
from rag.evaluate import score_answers  # noqa: E402
from rag.index import Index  # noqa: E402

TOKENS_PER_CHUNK = 200  # about what a corpus chunk costs in the prompt, with its header


def k_for(budget: int) -> int:
    return max(DEFAULT_TOP_K, (budget - DEFAULT_MAX_ANSWER_TOKENS) // TOKENS_PER_CHUNK)


def run(index: Index, items: list[dict], budget: int) -> dict:
    index.settings = index.settings._merged({"context_tokens": budget, "top_k": k_for(budget)})
    answers, firsts, in_prompt = [], [], []
    for item in items:
        started = time.perf_counter()
        first: list[float] = []
        answer = index.ask(item["question"], on_draft=lambda _p: first or first.append(time.perf_counter()))
        answers.append(answer)
        if answer.strategy != "abstain" and first:
            firsts.append(first[0] - started)
            in_prompt.append(len(answer.sources))
    scores = score_answers(items, answers, index.settings.strategy)
    return {**scores, "ttft": statistics.median(firsts) if firsts else 0.0,
            "sources": statistics.mean(in_prompt) if in_prompt else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="768,1024,1536,2048,3072")
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    budgets = sorted({int(b) for b in args.budgets.split(",")} | {DEFAULT_CONTEXT_TOKENS})
    items = questions()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load({"index_dir": args.index_dir or Path(tmp) / "index", "llm_model": args.model})
        ingest([CORPUS], settings=settings)
        index = Index.open(settings=settings)
        index.ask(items[0]["question"])  # load both models before any clock starts
        rows = {b: run(index, items, b) for b in budgets}
    ref = rows[DEFAULT_CONTEXT_TOKENS]
    print(f"model {index.generator.name}, strategy {settings.strategy}; {machine()}")
    print("| context tokens | k | sources in prompt (mean) | answer accuracy | citation precision | "
          "time to first token p50 | vs default |")
    print("|---|---|---|---|---|---|---|")
    for b, r in rows.items():
        label = f"{b} (default, reference)" if b == DEFAULT_CONTEXT_TOKENS else str(b)
        print(f"| {label} | {k_for(b)} | {r['sources']:.1f} | {r['accuracy']} | {r['citation_precision']} | "
              f"{r['ttft']:.2f} s | {r['ttft'] / ref['ttft']:.2f}x |")


if __name__ == "__main__":
    main()
