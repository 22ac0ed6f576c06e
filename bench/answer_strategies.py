"""Answer strategies compared on the corpus question set, to choose `ask`'s default.

One LLM answer per question (default model and settings), then each strategy is scored
on the same answers, so the comparison costs one pass of generation:

- llm: the model's answer as it is;
- fallback: quotes from the sources instead when no sentence of the answer is supported;
- grounded: fallback, plus the best source passage when the answer does not already say it;
- extractive: source sentences only, no model (the reference, measured in the same run).

Scores are those of `rag eval --qa`: answer accuracy, citation precision, abstention
precision/recall, latency.

    python bench/answer_strategies.py [--index-dir DIR] [--model GGUF] [--context-tokens N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, machine, questions  # noqa: E402
from rag import Settings, ingest  # noqa: E402
from rag.citations import citations_for  # noqa: E402
from rag.evaluate import score_answers  # noqa: E402
from rag.answer import add_source_passages  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.verify import extract  # noqa: E402


def variants(index: Index, question: str) -> dict[str, object]:
    started = time.perf_counter()
    plain = index.ask(question)
    elapsed = (time.perf_counter() - started) * 1000
    quoted = index.ask(question, extractive=True)
    out = {"llm": plain, "extractive": quoted}
    if plain.strategy != "llm" or any(s.supported for s in plain.sentences):
        out["fallback"] = plain
    else:
        out["fallback"] = replace(quoted, timings_ms={**quoted.timings_ms, "total": elapsed})
    out["grounded"] = out["fallback"]
    if out["fallback"] is plain and plain.strategy == "llm":
        ex = extract(question, plain.hits, idf=index.idf(question))
        grounded = add_source_passages(plain.text, plain.sentences, ex, plain.hits, plain.sources)
        if grounded is not None:
            text, sentences = grounded
            out["grounded"] = replace(plain, text=text, sentences=sentences,
                                      citations=citations_for(text, sentences, plain.sources))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--context-tokens", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load({"index_dir": args.index_dir or Path(tmp) / "index", "strategy": "llm",
                                  "fallback": False, "llm_model": args.model, "context_tokens": args.context_tokens})
        ingest([CORPUS], settings=settings)
        index = Index.open(settings=settings)
        items = questions()
        runs = [variants(index, item["question"]) for item in items]
    print(f"model {index.generator.name}, context {settings.context_tokens} tokens; {machine()}")
    print("| strategy | answer accuracy | citation precision | abstention precision | abstention recall | latency p50 / p95 |")
    print("|---|---|---|---|---|---|")
    for name in ("llm", "fallback", "grounded", "extractive"):
        r = score_answers(items, [run[name] for run in runs], name)
        lat = r["latency_ms"]
        print(f"| {name}{' (reference)' if name == 'extractive' else ''} | {r['accuracy']} | {r['citation_precision']} | "
              f"{r['abstention_precision']} | {r['abstention_recall']} | {lat['p50'] / 1000:.2f} s / {lat['p95'] / 1000:.2f} s |")


if __name__ == "__main__":
    main()
