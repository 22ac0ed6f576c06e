"""Time to first token against the context budget, with the default GGUF.

For each budget the prompt is filled with as many of the top 20 chunks as fit, then the
answer is streamed through the pipeline's generator. The reference is llama.cpp asked
for one token on the very same prompt tokens in the same run (pure prefill), so the
ratio shows what our path adds. Prefill dominates: this is why the default budget is
small (see rag/config.py).

    python bench/ttft.py [--index-dir indexes/default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, machine  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag.index import Index  # noqa: E402

BUDGETS = (768, 1024, 1536, 2048, 3072, 4096)
QUESTIONS = (
    "Why does a RAG system split documents into chunks?",
    "What does the KV cache store?",
    "How does top-p sampling choose tokens?",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index-dir", default="indexes/bench-ttft")
    args = parser.parse_args()
    ingest([CORPUS], settings=Settings.load({"index_dir": args.index_dir}))
    print(f"machine: {machine()}")
    print(f"{'budget':>6} {'prompt tok':>10} {'sources':>7} {'TTFT s':>7} {'prefill-only s':>14} {'ratio':>5} {'prefill tok/s':>13}")
    for budget in BUDGETS:
        settings = Settings.load({"index_dir": args.index_dir, "context_tokens": budget, "max_answer_tokens": 128})
        index = Index.open(settings=settings)
        gen = index.generator
        rows = []
        for q in QUESTIONS:
            prompt = index.prompt(q, index.search(q, 20))
            gen._load(budget)  # load outside the timing: TTFT here is prompt processing
            t = time.perf_counter()
            next(iter(gen.stream(prompt.text, 128, 0.0, budget)))
            ttft = time.perf_counter() - t
            model = gen._load(budget)
            model.reset()
            t = time.perf_counter()
            model.create_completion(gen.tokenize(prompt.text), max_tokens=1, temperature=0.0)
            raw = time.perf_counter() - t
            model.reset()
            rows.append((prompt.tokens, len(prompt.sources), ttft, raw))
        tok = statistics.mean(r[0] for r in rows)
        ttft = statistics.median(r[2] for r in rows)
        raw = statistics.median(r[3] for r in rows)
        print(f"{budget:>6} {tok:>10.0f} {statistics.mean(r[1] for r in rows):>7.1f} {ttft:>7.2f} {raw:>14.2f} "
              f"{ttft / raw:>5.2f} {tok / raw:>13.0f}")


if __name__ == "__main__":
    main()
