"""`rag serve` end to end: the real command in a subprocess on an ephemeral loopback port,
over an index built with the real embedder, answering with the real SmolLM2 through
llama.cpp; called with plain HTTP and with the official `openai` client.

Generation is slow on a shared CPU, so answers are kept short (--max-tokens 32, fewer
where the test is about the queue) and the unanswerable question abstains without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx2 as httpx  # the HTTP client the openai and mcp packages use (httpx 2)
import pytest
from typer.testing import CliRunner

from rag.cli import app

PROJECT = Path(__file__).resolve().parents[1]
runner = CliRunner()
QUESTION = "How many entries are in GPT-2's token vocabulary?"
START_TIMEOUT = 180  # loading the models on a busy two-core machine


def cli_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 4), result.stderr
    return json.loads(result.stdout)


def without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    docs = tmp_path_factory.mktemp("serve-docs")
    for name in ("tokenization.md", "retrieval-augmented-generation.md"):
        (docs / name).write_text((PROJECT / "corpus" / name).read_text(encoding="utf-8"), encoding="utf-8")
    path = str(tmp_path_factory.mktemp("serve") / "index")
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", path, "--quiet"])
    assert result.exit_code == 0, result.stderr
    return path


class Server:
    """`rag serve ARGS` in a child process; `url` once it listens."""

    def __init__(self, log: Path, *args: str) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT)}
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", "0", *args],
                                         stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"rag serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.url = found.group(1)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"rag serve did not stop within {timeout} s of SIGTERM")
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(index_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("serve-log") / "server.log", "--index-dir", index_dir, "--max-tokens", "32",
               "--queue", "1")
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log.read_text()[-3000:]


def post(server: Server, path: str, body: dict, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=kw.pop("timeout", 300), **kw)


def test_health_and_files_are_what_rag_list_says(server: Server, index_dir: str):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["index"]["files"] == 2
    assert health["models"]["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "SmolLM2" in health["models"]["llm"]  # loaded at start
    assert health["queue"] == {"depth": 0, "capacity": 2}
    assert httpx.get(f"{server.url}/v1/files").json() == cli_json("list", "--index-dir", index_dir)


def test_search_is_what_rag_search_says(server: Server, index_dir: str):
    query = "Why does a RAG system split documents into chunks?"
    over_http = post(server, "/v1/search", {"query": query, "k": 3}).json()
    assert over_http == cli_json("search", query, "-k", "3", "--index-dir", index_dir)
    assert over_http["hits"][0]["source"] == "retrieval-augmented-generation.md"
    typed = post(server, "/v1/search", {"query": query, "k": 2, "mode": "lexical", "where": ["source=tok*"]}).json()
    assert typed == cli_json("search", query, "-k", "2", "--mode", "lexical", "--where", "source=tok*",
                             "--index-dir", index_dir)
    assert {h["source"] for h in typed["hits"]} == {"tokenization.md"}


def test_extractive_ask_is_what_rag_ask_says(server: Server, index_dir: str):
    over_http = post(server, "/v1/ask", {"question": QUESTION, "strategy": "extractive"}).json()
    expected = cli_json("ask", QUESTION, "--extractive", "--index-dir", index_dir)
    assert without_timings(over_http) == without_timings(expected)
    assert over_http["answerable"] and "50,257" in over_http["answer"]


def test_generated_ask_streams_tokens_then_the_whole_answer(server: Server):
    with httpx.stream("POST", f"{server.url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [(m.group(1), json.loads(m.group(2)))
                  for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", r.read().decode())]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "answer" and kinds.count("token") >= 2 and set(kinds[:-1]) == {"token"}
    answer = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]).strip() == answer["llm_answer"]  # as the model wrote it
    assert set(answer) == set(cli_json("ask", QUESTION, "--extractive", "--index-dir", server_index(server)))
    assert answer["models"]["llm"] and answer["answerable"] and answer["sources"]
    assert all(c["quote"] is None or c["quote"]["text"] for c in answer["citations"])


def server_index(server: Server) -> str:
    return httpx.get(f"{server.url}/health").json()["index"]["location"]


def test_the_openai_client_chats_with_the_index(server: Server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", timeout=300)
    assert [m.id for m in client.models.list()] == ["rag"]
    reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    rag = reply.model_extra["rag"]
    assert rag["answerable"] and rag["question"] == QUESTION
    assert content.startswith(rag["answer"].strip()) and "\n\nSources:\n[" in content
    assert re.search(r"\[\d+\]", content) and "tokenization.md" in content
    # A follow-up, streamed: the earlier turn is history; the chunks add up to the reply.
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": content}]
    chunks = list(client.chat.completions.create(
        model="rag", stream=True, max_tokens=24,
        messages=[*history, {"role": "user", "content": "How does byte-pair encoding build it?"}]))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1].model_extra["rag"]
    assert streamed.startswith(last["answer"].strip()) and last["question"] == "How does byte-pair encoding build it?"
    # Unanswerable: a normal reply that says so, and answerable false in the extra field.
    none = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "What is the capital of Peru?"}])
    assert none.choices[0].message.content == "The documents do not contain the answer."
    assert none.model_extra["rag"]["answerable"] is False and none.model_extra["rag"]["abstain_reason"]


def test_a_full_queue_is_429_and_a_client_that_leaves_frees_the_model(server: Server):
    # --queue 1: one answer written, one waiting, the third refused.
    slow = {"question": "What is byte-pair encoding?", "max_tokens": 400, "context_tokens": 1024, "stream": True}
    with httpx.Client(timeout=300) as leaving:
        with leaving.stream("POST", f"{server.url}/v1/ask", json=slow) as first:
            assert first.status_code == 200
            pieces = first.iter_bytes()  # kept: a dropped iterator would close the connection
            next(pieces)  # a token: the model is writing
            results: list[httpx.Response] = []
            waiting = threading.Thread(target=lambda: results.append(
                post(server, "/v1/ask", {"question": "What is RAG?", "max_tokens": 4, "k": 1})))
            waiting.start()
            deadline = time.monotonic() + 30
            while httpx.get(f"{server.url}/health").json()["queue"]["depth"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            refused = post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "What is RAG?"}]})
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["type"] == "rate_limit_error"
        # The first client left mid-answer: its generation stops and the waiting one runs.
        waiting.join(300)
    assert results and results[0].status_code == 200 and results[0].json()["question"] == "What is RAG?"
    deadline = time.monotonic() + 60
    while httpx.get(f"{server.url}/health").json()["queue"]["depth"]:
        assert time.monotonic() < deadline, "the abandoned answer is still being written"
        time.sleep(0.2)


def test_an_ingest_while_serving_becomes_visible(server: Server, index_dir: str, tmp_path: Path):
    note = tmp_path / "owls.md"
    note.write_text("# Owls\n\nThe tawny owl hunts voles at night and nests in hollow oak trees.\n", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(note), "--index-dir", index_dir, "--quiet"]).exit_code == 0
    hits = post(server, "/v1/search", {"query": "Where does the tawny owl nest?", "k": 1}).json()["hits"]
    assert hits[0]["source"].endswith("owls.md")
    assert httpx.get(f"{server.url}/health").json()["index"]["files"] == 3
    assert httpx.get(f"{server.url}/v1/files").json() == cli_json("list", "--index-dir", index_dir)


# --- a second server: the token, the loopback rule, and a clean stop -------------------------------


def _tree(path: str) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(path).rglob("*") if p.is_file()}


def test_token_rules_and_a_clean_stop(index_dir: str, tmp_path: Path):
    refused = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--host", "0.0.0.0", "--index-dir", index_dir],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "RAG_SERVE_TOKEN": ""})
    assert refused.returncode == 1 and "--token or RAG_SERVE_TOKEN" in refused.stderr
    before = _tree(index_dir)
    token = "a-long-enough-token-for-the-test"
    s = Server(tmp_path / "server.log", "--index-dir", index_dir, "--extractive", "--token", token)
    try:
        assert httpx.get(f"{s.url}/health").status_code == 200
        r = post(s, "/v1/search", {"query": "tokens"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = post(s, "/v1/search", {"query": "tokens"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["hits"]
        assert "SmolLM2" not in json.dumps(httpx.get(f"{s.url}/health").json())  # --extractive loads no LLM
    finally:
        code = s.stop()
    assert code == 0 and "rag serve: stopped" in s.log.read_text()
    assert _tree(index_dir) == before  # the server wrote nothing into the index


# --- rag serve --watch: the folder watcher inside the server (issue 18) ----------------------------


def _search_until(server: Server, query: str, wanted: Any, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        hits = post(server, "/v1/search", {"query": query, "k": 3}).json()["hits"]
        if wanted(hits) or time.monotonic() > deadline:
            return hits
        time.sleep(0.3)


def test_serve_watch_keeps_the_folder_in_sync_while_serving(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tokenization.md").write_text((PROJECT / "corpus" / "tokenization.md").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    index = tmp_path / "index"  # no index yet: the server ingests the folder before it listens
    s = Server(tmp_path / "server.log", "--index-dir", str(index), "--watch", str(docs), "--extractive")
    try:
        assert httpx.get(f"{s.url}/health").json()["index"]["files"] == 1
        note = docs / "quagga.md"
        note.write_text("# Quaggas\n\nThe quagga was a plains zebra of South Africa, hunted to extinction in 1883.\n",
                        encoding="utf-8")
        found = _search_until(s, "When did the quagga die out?", lambda h: h and h[0]["source"] == "quagga.md")
        assert found and found[0]["source"] == "quagga.md", found
        note.unlink()
        gone = _search_until(s, "When did the quagga die out?", lambda h: all(x["source"] != "quagga.md" for x in h))
        assert all(x["source"] != "quagga.md" for x in gone)
        assert httpx.get(f"{s.url}/v1/files").json() == cli_json("list", "--index-dir", str(index))
    finally:
        assert s.stop() == 0, s.log.read_text()[-3000:]
    log = s.log.read_text()
    assert "rag serve --watch:" in log and "synced:" in log, log[-3000:]
