"""`rag serve` with fake models: the rules a server must keep, checked against a real
uvicorn server in a thread and a real HTTP client (the end-to-end tests with the real
models, the CLI and the OpenAI client are in test_serve_e2e.py).

Covered: tokens and the loopback rule, body limits and validation as OpenAI-shaped
errors, 429 with Retry-After from a full queue, a disconnected client stopping its
generation, commits of the index followed without a restart, chat history handling.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx2 as httpx  # the HTTP client the openai and mcp packages use (httpx 2)
import pytest

from fakes import EchoGenerator, HashEmbedder, make_folder, settings
from rag.errors import ConfigError
from rag.ingestion import ingest
from rag.serve import ServeOptions, is_loopback
from rag.serve.app import create_app
from rag.serve.follower import IndexFollower
from rag.serve.openai_chat import BadConversation, conversation
from rag.serve.schemas import ChatMessage
from rag.serve.server import bind, url_of

TOKEN = "s3cret-token-for-tests-0123456789"


class SlowGenerator(EchoGenerator):
    """Writes one word every `delay` seconds until max_tokens (or until it is stopped),
    and counts the words it wrote: a generation someone must stop."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.written = 0
        self.started = threading.Event()

    def stream(self, prompt: str, max_tokens: int, temperature: float, n_ctx: int) -> Iterator[str]:
        self.started.set()
        for i in range(max_tokens):
            time.sleep(self.delay)
            self.written += 1
            yield "purr " if i else "Cats "


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on an ephemeral loopback port, in a thread; its URL."""
    import uvicorn

    sock = bind(ServeOptions(port=0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = make_folder(tmp_path / "docs")
    ingest([folder], settings=settings(tmp_path), embedder=HashEmbedder())
    return folder


def follower_for(tmp_path: Path, generator: Any = None, **kw: Any) -> IndexFollower:
    s = settings(tmp_path, min_score=0.0, min_coverage=0.0, check_terms=False, **kw)
    return IndexFollower(s, embedder=HashEmbedder(), generator=generator or EchoGenerator())


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type"} <= set(body["error"]), body
    return body["error"]


# --- the binding rule and the token ---------------------------------------------------------


def test_loopback_hosts_are_recognised():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org"]))


def test_a_non_loopback_host_needs_a_token_of_some_length():
    with pytest.raises(ConfigError, match="--token or RAG_SERVE_TOKEN"):
        ServeOptions(host="0.0.0.0").check()
    with pytest.raises(ConfigError, match="at least 16"):
        ServeOptions(host="0.0.0.0", token="short").check()
    ServeOptions(host="0.0.0.0", token=TOKEN).check()
    ServeOptions().check()  # loopback without a token is fine
    assert TOKEN not in repr(ServeOptions(token=TOKEN))


def test_with_a_token_every_endpoint_but_health_needs_it(tmp_path: Path, docs: Path):
    app = create_app(follower_for(tmp_path), ServeOptions(token=TOKEN))
    with running(app) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        for method, path, body in [("GET", "/v1/files", None), ("GET", "/v1/models", None),
                                   ("POST", "/v1/search", {"query": "cats"}), ("GET", "/nowhere", None)]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                r = httpx.request(method, url + path, json=body, headers=headers)
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
                assert error_of(r)["type"] == "authentication_error"
        good = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(f"{url}/v1/search", json={"query": "cats purr", "k": 2}, headers=good)
        assert r.status_code == 200 and r.json()["hits"][0]["source"] == "cats.md"
        for headers in ({}, {"Authorization": "Bearer wrong"}):  # liveness for all, where the index is not
            index = httpx.get(f"{url}/health", headers=headers).json()["index"]
            assert "location" not in index and index["files"] == 3
        assert httpx.get(f"{url}/health", headers=good).json()["index"]["location"] == str(tmp_path / "index")


def test_cors_is_off_unless_an_origin_is_given(tmp_path: Path, docs: Path):
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        r = httpx.get(f"{url}/v1/models", headers={"Origin": "http://localhost:3000"})
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in httpx.options(f"{url}/v1/search", headers=preflight).headers
    with running(create_app(follower_for(tmp_path), ServeOptions(cors=("http://localhost:3000",)))) as url:
        r = httpx.options(f"{url}/v1/search", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = httpx.get(f"{url}/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# --- bodies: size and validation --------------------------------------------------------------


def test_oversized_bodies_are_refused_with_413(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path), ServeOptions(max_body=2048))) as url:
        r = httpx.post(f"{url}/v1/search", json={"query": "x" * 3000})
        assert r.status_code == 413 and error_of(r)["code"] == "body_too_large"

        def chunked() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
            yield b'{"query": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = httpx.post(f"{url}/v1/search", content=chunked(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert httpx.post(f"{url}/v1/search", json={"query": "cats"}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"query": "cats", "k": 0}, "k"),
    ({"query": "cats", "k": 10_000}, "k"),
    ({"query": ""}, "query"),
    ({"query": "cats", "where": ["colour=red"]}, "where"),
    ({"query": "cats", "mode": "fuzzy"}, "mode"),
    ({"query": "cats", "top_k": 3}, "top_k"),
    ({"k": 3}, "query"),
])
def test_invalid_search_bodies_are_422_naming_the_field(tmp_path: Path, docs: Path, body: dict, field: str):
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        r = httpx.post(f"{url}/v1/search", json=body)
        assert r.status_code == 422
        error = error_of(r)
        assert error["type"] == "invalid_request_error" and error["param"] == field and field in error["message"]


def test_invalid_ask_and_chat_bodies(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        r = httpx.post(f"{url}/v1/ask", json={"question": "cats?", "context_tokens": 10})
        assert r.status_code == 422 and error_of(r)["param"] == "context_tokens"
        r = httpx.post(f"{url}/v1/ask", json={"question": "cats?", "context_tokens": 200, "max_tokens": 300})
        assert r.status_code == 400 and "context_tokens (200) must be larger" in error_of(r)["message"]
        r = httpx.post(f"{url}/v1/ask", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        r = httpx.post(f"{url}/v1/chat/completions", json={"model": "rag", "messages": [
            {"role": "user", "content": "cats?"}, {"role": "assistant", "content": "They purr."}]})
        assert r.status_code == 400 and "last message must be the user's question" in error_of(r)["message"]
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 4001}]})
        assert r.status_code == 422 and error_of(r)["param"] == "messages"
        assert "the question (the last user message) has 4001 characters" in error_of(r)["message"]
        turn = [{"role": "user", "content": "y" * 3000}, {"role": "assistant", "content": "z" * 3000}]
        long_chat = turn * 17 + [{"role": "user", "content": "cats?"}]  # 102,005 characters
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": long_chat})
        assert r.status_code == 422 and "characters together; the limit is 100000" in error_of(r)["message"]
        r = httpx.get(f"{url}/v1/models/gpt-4")
        assert r.status_code == 404 and error_of(r)["type"] == "not_found_error"


# --- answers, streaming, the queue -------------------------------------------------------------


def test_ask_and_its_stream_hold_the_same_answer(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path, strategy="llm"), ServeOptions())) as url:
        plain = httpx.post(f"{url}/v1/ask", json={"question": "What do cats eat?"}).json()
        assert plain["llm_answer"] == "The sources say so [1]." and plain["citations"][0]["source"] == "cats.md"
        with httpx.stream("POST", f"{url}/v1/ask", json={"question": "What do cats eat?", "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [(e.split("\n")[0], json.loads(e.split("\n")[1][6:])) for e in r.read().decode().split("\n\n") if e]
        kinds = [k for k, _ in events]
        assert kinds == ["event: token"] * 3 + ["event: answer"]
        assert "".join(d["text"] for _, d in events[:3]) == plain["llm_answer"]  # the model's text, as written
        final = events[-1][1]
        assert {k: v for k, v in final.items() if k != "timings_ms"} == {k: v for k, v in plain.items() if k != "timings_ms"}


def test_a_full_queue_answers_429_with_retry_after(tmp_path: Path, docs: Path):
    slow = SlowGenerator(delay=0.05)
    app = create_app(follower_for(tmp_path, generator=slow, strategy="llm"), ServeOptions(queue=0))
    body = {"question": "What do cats eat?", "max_tokens": 40}
    with running(app) as url:
        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(httpx.post(f"{url}/v1/ask", json=body, timeout=30).status_code))
        first.start()
        assert slow.started.wait(10)
        r = httpx.post(f"{url}/v1/ask", json=body)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert error_of(r)["type"] == "rate_limit_error"
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "cats?"}]})
        assert r.status_code == 429
        assert httpx.post(f"{url}/v1/search", json={"query": "cats"}).status_code == 200  # searches are not queued
        assert httpx.get(f"{url}/health").json()["queue"] == {"depth": 1, "capacity": 1}
        first.join(30)
        assert results == [200]
        assert httpx.post(f"{url}/v1/ask", json={**body, "max_tokens": 2}).status_code == 200


@pytest.mark.parametrize("path, body", [
    ("/v1/ask", {"question": "What do cats eat?", "stream": True, "max_tokens": 2000}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "What do cats eat?"}], "stream": True,
                              "max_tokens": 2000}),
    ("/v1/ask", {"question": "What do cats eat?", "max_tokens": 2000}),
])
def test_a_client_that_leaves_stops_its_generation(tmp_path: Path, docs: Path, path: str, body: dict):
    slow = SlowGenerator(delay=0.02)  # 2000 words: 40 s unless stopped
    app = create_app(follower_for(tmp_path, generator=slow, strategy="llm", context_tokens=4096),
                     ServeOptions(queue=0))
    with running(app) as url:
        with httpx.Client(timeout=httpx.Timeout(10, read=0.5)) as client:
            with contextlib.suppress(httpx.ReadTimeout):
                with client.stream("POST", url + path, json=body) as r:
                    assert r.status_code == 200
                    for _ in r.iter_bytes():
                        break
            assert slow.started.wait(10)
        # The connection is closed: the job must end long before its 2000 words.
        deadline = time.monotonic() + 5
        while httpx.get(f"{url}/health").json()["queue"]["depth"]:
            assert time.monotonic() < deadline, f"still generating after the client left ({slow.written} words)"
            time.sleep(0.05)
        written = slow.written
        assert written < 500
        time.sleep(0.3)
        assert slow.written == written  # and it does not go on
        r = httpx.post(f"{url}/v1/ask", json={"question": "What do cats eat?", "max_tokens": 3})
        assert r.status_code == 200  # the model is free for the next request


def test_an_asks_rerank_reaches_the_index_settings(tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch):
    from rag.index import Index

    seen: list[bool] = []
    real_ask = Index.ask

    def ask(self: Index, *args: Any, **kw: Any) -> Any:
        seen.append(self.settings.rerank)
        return real_ask(self, *args, **kw)

    monkeypatch.setattr(Index, "ask", ask)
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        for extra in ({"rerank": True}, {"rerank": False}, {}):
            body = {"question": "What do cats eat?", "strategy": "extractive", **extra}
            assert httpx.post(f"{url}/v1/ask", json=body).status_code == 200
    assert seen == [True, False, False]  # False: the server's own setting


def test_a_stop_signal_takes_no_lock_and_the_shutdown_stops_the_queue(monkeypatch: pytest.MonkeyPatch):
    import asyncio
    import signal

    import uvicorn

    from rag.serve.queue import GenerationQueue
    from rag.serve.server import _Server

    queue = GenerationQueue(1)
    server = _Server(uvicorn.Config(lambda *a: None))
    server.on_exit = lambda: queue.stop(60.0)
    returned = threading.Event()

    def signal_during_submit() -> None:
        with queue._lock:  # where the loop's thread is while it admits a job
            server.handle_exit(signal.SIGTERM, None)
        returned.set()

    threading.Thread(target=signal_during_submit, daemon=True).start()
    assert returned.wait(10), "the signal handler waited for the queue's lock"
    assert server.should_exit and not queue.closing
    closing_at_shutdown: list[bool] = []

    async def uvicorns_shutdown(self: Any, sockets: Any = None) -> None:
        closing_at_shutdown.append(queue.closing)

    monkeypatch.setattr(uvicorn.Server, "shutdown", uvicorns_shutdown)
    asyncio.run(server.shutdown())
    assert closing_at_shutdown == [True]  # new jobs refused before the requests in flight are waited for
    queue.close()


# --- the index moves on -------------------------------------------------------------------------


def test_a_commit_during_serving_is_followed_without_restart(tmp_path: Path, docs: Path):
    follower = follower_for(tmp_path)
    with running(create_app(follower, ServeOptions())) as url:
        before = httpx.get(f"{url}/v1/files").json()
        assert [f["path"] for f in before["files"]] == ["cats.md", "dogs.txt", "sub/birds.md"]
        old = follower._current.index.store
        (docs / "owls.md").write_text("# Owls\n\nOwls hunt mice at night in silence.\n", encoding="utf-8")
        ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
        hits = httpx.post(f"{url}/v1/search", json={"query": "owls hunt mice at night", "k": 1}).json()["hits"]
        assert hits[0]["source"] == "owls.md"
        assert "owls.md" in [f["path"] for f in httpx.get(f"{url}/v1/files").json()["files"]]
        health = httpx.get(f"{url}/health").json()["index"]
        assert health["commits_followed"] == 1 and health["files"] == 4
        assert health["location"] == str(tmp_path / "index")  # no token set: told to anyone
        with pytest.raises(Exception):  # the superseded generation's store was closed
            old.hits([(0, 1.0)])


# --- chat history ------------------------------------------------------------------------------


def msgs(*pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=r, content=c) for r, c in pairs]  # type: ignore[arg-type]


def test_a_conversation_becomes_turns_and_a_question():
    turns, question = conversation(msgs(
        ("system", "You are helpful."),
        ("user", "What is BPE?"), ("assistant", "It merges pairs [1].\n\nSources:\n[1] tokenization.md"),
        ("user", "Who made it?"), ("assistant", "The documents do not contain the answer."),
        ("user", "And its vocabulary?"),
    ))
    assert turns == [("What is BPE?", "It merges pairs [1].", True), ("Who made it?", "The documents do not contain the answer.", False)]
    assert question == "And its vocabulary?"
    parts = [ChatMessage(role="user", content=[{"type": "text", "text": "Hi"}, {"type": "image_url"}])]  # type: ignore[list-item]
    assert conversation(parts) == ([], "Hi")
    for bad in (msgs(("assistant", "x")), msgs(("user", "  ")), msgs(("system", "x"))):
        with pytest.raises(BadConversation):
            conversation(bad)


def test_the_servers_where_is_the_default_filter(tmp_path: Path, docs: Path):
    with pytest.raises(ConfigError, match="source=GLOB or type=EXT"):
        ServeOptions(where=("colour=red",)).check()
    with running(create_app(follower_for(tmp_path), ServeOptions(where=("type=md",)))) as url:
        hits = httpx.post(f"{url}/v1/search", json={"query": "dogs bark at the mailman"}).json()["hits"]
        assert hits and all(h["source"].endswith(".md") for h in hits)
        hits = httpx.post(f"{url}/v1/search", json={"query": "dogs bark at the mailman", "where": []}).json()["hits"]
        assert hits[0]["source"] == "dogs.txt"  # a request's own where, even empty, wins


def test_searches_during_ingests_see_whole_commits_only(tmp_path: Path, docs: Path):
    follower = follower_for(tmp_path)
    seen: set[tuple[str, ...]] = set()
    failures: list[str] = []
    stop = threading.Event()
    with running(create_app(follower, ServeOptions())) as url:
        def reader() -> None:
            with httpx.Client(base_url=url) as http:
                while not stop.is_set():
                    r = http.post("/v1/search", json={"query": "animals at night", "k": 20})
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        seen.add(tuple(sorted({h["source"] for h in r.json()["hits"]})))

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(4):  # each commit adds one file
            (docs / f"bats{i}.md").write_text(f"# Bats {i}\n\nBats fly at night and eat moths {i}.\n", encoding="utf-8")
            ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(30)
        assert 1 <= follower.swaps <= 4  # two commits between requests are followed as one
        last = httpx.post(f"{url}/v1/search", json={"query": "animals at night", "k": 20}).json()["hits"]
        assert {f"bats{i}.md" for i in range(4)} <= {h["source"] for h in last}
    assert not failures
    base = {"cats.md", "dogs.txt", "sub/birds.md"}
    for sources in seen:  # each result holds the files of one commit: the first n bats files, never a gap
        bats = sorted(s for s in sources if s.startswith("bats"))
        assert bats == [f"bats{i}.md" for i in range(len(bats))] and set(sources) - set(bats) <= base


def test_a_commit_with_another_embedder_is_refused_and_the_open_one_served(
        tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch):
    from rag.stores.faiss import FaissBackend

    follower = follower_for(tmp_path)
    opened: list[Any] = []
    real_open = FaissBackend.open
    monkeypatch.setattr(FaissBackend, "open", lambda self: opened.append(real_open(self)) or opened[-1])
    with running(create_app(follower, ServeOptions())) as url:
        ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder(name="test/other", dim=32), rebuild=True)
        r = httpx.post(f"{url}/v1/search", json={"query": "cats purr"})
        assert r.status_code == 200 and r.json()["hits"][0]["source"] == "cats.md"
        assert httpx.get(f"{url}/health").json()["index"]["generation"] == "gen-000001"
        assert follower.swaps == 0
        assert len(opened) == 1  # the refused commit's store, opened once and closed again
        with pytest.raises(Exception):
            opened[0].hits([(0, 1.0)])


def test_files_are_what_rag_list_says_without_opening_the_index_again(
        tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch):
    from rag.inventory import list_index
    from rag.stores.faiss import FaissBackend

    follower = follower_for(tmp_path)
    expected = json.loads(json.dumps(list_index(follower.settings).to_dict()))
    opened: list[Any] = []
    real_open = FaissBackend.open
    monkeypatch.setattr(FaissBackend, "open", lambda self: opened.append(self) or real_open(self))
    with running(create_app(follower, ServeOptions())) as url:
        assert httpx.get(f"{url}/v1/files").json() == expected
    assert opened == []  # served from the store the follower holds open


def test_serve_without_the_extra_names_the_install_line(tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    from typer.testing import CliRunner

    from rag.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    result = CliRunner().invoke(app, ["serve", "--index-dir", str(tmp_path / "index")])
    assert result.exit_code == 1
    assert "fastapi not installed" in result.stderr and "pip install -e '.[serve]'" in result.stderr
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--index-dir", str(tmp_path / "index")],
                                 env={"RAG_SERVE_TOKEN": ""})
    assert refused.exit_code == 1 and "would let other machines reach the index" in refused.stderr


def test_a_streamed_chat_reply_keeps_the_connection_alive_and_ends_with_the_rag_field(
        tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("rag.serve.routes.HEARTBEAT_SECONDS", 0.2)
    slow = SlowGenerator(delay=0.05)
    app = create_app(follower_for(tmp_path, generator=slow, strategy="llm"), ServeOptions())
    body = {"model": "rag", "stream": True, "max_tokens": 30, "messages": [{"role": "user", "content": "What do cats eat?"}]}
    with running(app) as url:
        text = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).text
    assert ": waiting for the model" in text  # comment lines while the reply is not ready
    datas = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    rag = chunks[-1]["rag"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert content.startswith(rag["answer"].strip()) and "\n\nSources:\n[" in content and content.endswith("cats.md")
