"""Generation threads: how long one answer takes with each thread count, on the machine
as it is and with other processes competing for the cores (issue 15 item 7).

For each condition (no added load, then 1..--busy processes that each spin one core,
started by this script and stopped after) and each thread count (1 up to the cores this
process may use, plus "auto", the default `rag` picks: rag.config.Settings.n_threads),
the default model writes --tokens tokens for the same prompt, greedy, --repeats times;
the median wall time is printed with its ratio to the best thread count of that
condition. The load average before each condition is printed too: "no added load" is
only quiet when nothing else runs on the machine.

    python bench/threads.py [--tokens 96] [--repeats 3] [--busy 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, questions  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.cpu import auto_threads  # noqa: E402
from rag.generators.llama_cpp import LlamaCppGenerator  # noqa: E402
from rag.prompt import messages  # noqa: E402

N_CTX = 2048


def _spin(stop) -> None:  # a process that keeps one core busy until told to stop
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def answer_seconds(gen: LlamaCppGenerator, prompt: str, tokens: int) -> float:
    gen._load(N_CTX)
    gen._model.reset()  # the prompt is evaluated every time, as a new question would be
    t = time.perf_counter()
    for _ in gen.stream(prompt, tokens, 0.0, N_CTX, stop=False):
        pass
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="at most this many competing processes")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    settings = Settings.load()
    counts = list(range(1, cores + 1))
    gens = {n: LlamaCppGenerator(settings.gguf_path, n) for n in counts}
    item = next(q for q in questions() if q["answerable"])
    prompt = gens[1].render_chat(messages(item["question"], [], []))
    print(f"model {gens[1].name}; {machine()}; {args.tokens} tokens an answer, median of {args.repeats}")
    for busy in range(args.busy + 1):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        try:
            time.sleep(1.0 if busy else 0.0)
            load = os.getloadavg()[0]
            auto = auto_threads(cores)
            times = {}
            for n in counts:
                answer_seconds(gens[n], prompt, 4)  # load and warm up
                times[n] = statistics.median(answer_seconds(gens[n], prompt, args.tokens)
                                             for _ in range(args.repeats))
        finally:
            stop.set()
            for p in spinners:
                p.join(5)
        best = min(times.values())
        label = "no added load" if not busy else f"{busy} spinning process{'es' if busy > 1 else ''}"
        print(f"\n{label} (load average {load:.2f}; auto picks {auto} thread{'s' if auto > 1 else ''}):")
        for n, s in times.items():
            mark = "  <- auto" if n == auto else ""
            print(f"  {n} thread{'s' if n > 1 else ' '}: {s:7.2f} s  ({s / best:5.2f}x the best){mark}")


if __name__ == "__main__":
    main()
