"""`rag serve` under load: N concurrent clients for a bounded time against /v1/search
and /v1/ask (extractive and generated), and a soak that watches the server's memory.

For each phase: requests/s (over the phase's whole time, including the answers still
being written at its end), p50/p95 latency, errors (anything but 200, and 429s, which
are counted apart: a full generation queue answers 429 on purpose), and for searches
the ratio to `Index.search` called in this process on the same index and queries,
measured in the same run from one thread (the reference) and from 8 threads sharing the
Index (so the ratio at 8 clients shows what HTTP, JSON and the server add, and not only
what concurrency gains).

Targets (issue 17): no errors but deliberate 429s at any concurrency; /v1/search at 8
clients at least 50% of the in-process rate; memory flat over a 5-minute soak (RSS at
start and end of the soak are printed).

    python bench/serve_load.py [--seconds 20] [--clients 1,8,32] [--soak 300]
                               [--index-dir DIR] [--max-tokens 32] [--no-generated]

Without --index-dir the sample corpus is ingested into a temporary index first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import CORPUS, ROOT, machine, questions  # noqa: E402

import httpx2 as httpx  # noqa: E402  (the HTTP client of the openai and mcp packages)


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # 429: the queue was full, as designed
    elapsed: float = 0.0  # until the last request sent before the deadline was answered

    def row(self) -> dict[str, Any]:
        done = len(self.latencies)
        lat = sorted(self.latencies)
        pct = (lambda q: round(lat[min(done - 1, int(q * done))] * 1000, 1)) if done else (lambda q: None)
        return {"phase": self.name, "clients": self.clients, "ok": done, "rps": round(done / self.elapsed, 2),
                "seconds": round(self.elapsed, 1),
                "p50_ms": pct(0.5), "p95_ms": pct(0.95), "429": self.refused, "errors": sum(self.errors.values()),
                "error_kinds": self.errors}


def drive(url: str, phase: Phase, body_of: Callable[[int], tuple[str, dict]]) -> Phase:
    """`phase.clients` threads, each with its own keep-alive connection, posting until
    the time is up."""
    started = time.monotonic()
    deadline = started + phase.seconds
    lock = threading.Lock()
    counter = itertools.count()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            while time.monotonic() < deadline:
                path, body = body_of(next(counter))
                t0 = time.perf_counter()
                try:
                    r = http.post(path, json=body)
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                took = time.perf_counter() - t0
                with lock:
                    if status == "200":
                        phase.latencies.append(took)
                    elif status == "429":
                        phase.refused += 1
                        time.sleep(min(1.0, float(r.headers.get("retry-after", 1))))  # as a polite client would
                    else:
                        phase.errors[status] = phase.errors.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(phase.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.elapsed = time.monotonic() - started
    return phase


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def in_process_rate(index_dir: str, queries: list[str], seconds: float, threads: int = 1) -> float:
    """Index.search calls per second in this process, from `threads` threads sharing one
    Index (as the server's thread pool shares its models), after a warm-up call."""
    from rag.index import Index

    index = Index.open(index_dir)
    index.search(queries[0], 5)
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(slot: int) -> None:
        while time.monotonic() < deadline:
            index.search(queries[(counts[slot] * threads + slot) % len(queries)], 5)
            counts[slot] += 1

    t0 = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = sum(counts) / (time.perf_counter() - t0)
    index.close()
    return rate


def start_server(index_dir: str, max_tokens: int, queue: int, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", "0", "--index-dir", index_dir,
                                 "--max-tokens", str(max_tokens), "--queue", str(queue)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    deadline = time.monotonic() + 300
    while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"rag serve did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc, found.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="length of each phase")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--soak", type=float, default=300, help="seconds of mixed load while RSS is watched (0: none)")
    ap.add_argument("--index-dir")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--queue", type=int, default=4)
    ap.add_argument("--no-generated", action="store_true", help="leave out the LLM phases")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rag-serve-load-"))
    index_dir = args.index_dir
    if index_dir is None:
        index_dir = str(work / "index")
        subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(CORPUS), "--index-dir", index_dir, "--quiet"],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    asked = [q["question"] for q in questions()]
    reference = in_process_rate(index_dir, asked, args.seconds)
    reference8 = in_process_rate(index_dir, asked, args.seconds, threads=8)
    proc, url = start_server(index_dir, args.max_tokens, args.queue, work / "server.log")
    rows: list[dict[str, Any]] = []
    try:
        pick = lambda i: asked[i % len(asked)]  # noqa: E731
        kinds: list[tuple[str, Callable[[int], tuple[str, dict]]]] = [
            ("search", lambda i: ("/v1/search", {"query": pick(i), "k": 5})),
            ("ask extractive", lambda i: ("/v1/ask", {"question": pick(i), "strategy": "extractive"})),
        ]
        if not args.no_generated:
            kinds.append(("ask generated", lambda i: ("/v1/ask", {"question": pick(i)})))
        for name, body_of in kinds:
            for n in clients:
                rows.append(drive(url, Phase(name, n, args.seconds), body_of).row())
                print(json.dumps(rows[-1]), file=sys.stderr)
        soak: dict[str, Any] = {}
        if args.soak:
            samples = [rss_mb(proc.pid)]
            mixed = lambda i: kinds[i % 2][1](i)  # noqa: E731  (searches and extractive answers)
            phase = Phase("soak (search + extractive)", 8, args.soak)
            watcher_stop = threading.Event()

            def watch() -> None:
                while not watcher_stop.wait(10):
                    samples.append(rss_mb(proc.pid))

            threading.Thread(target=watch, daemon=True).start()
            drive(url, phase, mixed)
            watcher_stop.set()
            samples.append(rss_mb(proc.pid))
            rows.append(phase.row())
            soak = {"rss_start_mb": round(samples[0], 1), "rss_end_mb": round(samples[-1], 1),
                    "rss_max_mb": round(max(samples), 1), "seconds": args.soak,
                    "rss_after_first_minute_mb": round(samples[min(len(samples) - 1, 6)], 1)}
    finally:
        proc.terminate()
        proc.wait(60)
    search8 = next((r for r in rows if r["phase"] == "search" and r["clients"] == 8), None)
    report = {"machine": machine(), "in_process_search_per_s": round(reference, 2),
              "in_process_search_8_threads_per_s": round(reference8, 2),
              "search_8_clients_ratio": round(search8["rps"] / reference, 3) if search8 else None,
              "search_8_clients_ratio_to_8_threads": round(search8["rps"] / reference8, 3) if search8 else None,
              "phases": rows, "soak": soak, "max_tokens": args.max_tokens, "queue": args.queue}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"rag serve under load ({report['machine']}; each phase {args.seconds:g} s; generated answers "
          f"--max-tokens {args.max_tokens}, --queue {args.queue})")
    print(f"in-process Index.search: {reference:.1f}/s from one thread (the reference), {reference8:.1f}/s from 8")
    print(f"{'phase':<28}{'clients':>8}{'s':>7}{'ok':>7}{'req/s':>9}{'p50 ms':>10}{'p95 ms':>10}{'429':>6}{'errors':>8}")
    for r in rows:
        print(f"{r['phase']:<28}{r['clients']:>8}{r['seconds']:>7}{r['ok']:>7}{r['rps']:>9}{str(r['p50_ms']):>10}"
              f"{str(r['p95_ms']):>10}{r['429']:>6}{r['errors']:>8}")
    if search8:
        print(f"/v1/search at 8 clients: {search8['rps']:.1f}/s = {report['search_8_clients_ratio']:.0%} of in-process "
              f"(target >= 50%), {report['search_8_clients_ratio_to_8_threads']:.0%} of in-process from 8 threads")
    if soak:
        print(f"soak {args.soak:g} s: RSS {soak['rss_start_mb']} MB at start, {soak['rss_after_first_minute_mb']} MB "
              f"after a minute, {soak['rss_end_mb']} MB at the end (max {soak['rss_max_mb']} MB)")
    errors = sum(r["errors"] for r in rows)
    print("errors other than 429: " + (str(errors) if errors else "none"))


if __name__ == "__main__":
    main()
