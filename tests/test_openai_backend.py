"""The OpenAI-compatible backend (rag/generators/openai_compat.py): against a tiny
in-process fake server for the protocol and the error messages, and once against
llama.cpp's real server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from fakes import HashEmbedder
from typer.testing import CliRunner

from rag import Settings, ingest
from rag.cli import EXIT_ERROR, app
from rag.errors import BackendError, ConfigError
from rag.generators import make_generator
from rag.generators.llama_cpp import LlamaCppGenerator, default_llm_path
from rag.generators.openai_compat import CHAT_PREFIX, OpenAIGenerator, estimate_tokens, parse_chat, sse_data
from rag.index import Index

PROJECT = Path(__file__).resolve().parents[1]
runner = CliRunner()

MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": 'Qu\'est-ce qu\'un "café"?\n\nSource 1:\n<<<\nUn café — 咖啡 ☕\n>>>'},
]


def sse(*events: Any) -> list[bytes]:
    """Chunks of an SSE body: dicts become `data: {json}` events, strings are sent as they are."""
    return [e.encode() if isinstance(e, str) else f"data: {json.dumps(e)}\n\n".encode() for e in events]


def delta(text: str | None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {} if text is None else {"content": text}, **extra}]}


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1 with canned replies per (method, path);
    it records every request it gets."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, str, list[bytes]]] = {
            ("GET", "/v1/models"): (200, "application/json", [json.dumps({"data": [{"id": "fake-model"}]}).encode()]),
            ("POST", "/v1/chat/completions"): (
                200, "text/event-stream", sse(delta("Hel"), delta("lo [1]."), "data: [DONE]\n\n"),
            ),
        }
        self.delay = 0.0  # seconds before answering
        self.requests: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append({
                    "method": method, "path": self.path, "headers": dict(self.headers),
                    "json": json.loads(body) if body else None,
                })
                time.sleep(server.delay)
                missing = (404, "application/json", [b'{"error": {"message": "no such route"}}'])
                status, kind, chunks = server.routes.get((method, self.path), missing)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Protocol


def test_stream_posts_the_messages_and_yields_the_deltas(server: FakeServer):
    server.routes[("POST", "/v1/chat/completions")] = (200, "text/event-stream", sse(
        {"choices": [{"delta": {"role": "assistant"}}]}, ": keep-alive\n\n", delta("Hel"), delta(""),
        {"choices": ["odd", {"delta": "odd"}, {"delta": {"content": 7}}]},  # skipped, not a crash
        delta("lo [1]."), delta(None, finish_reason="stop"), "data: [DONE]\n\n", delta("after the end"),
    ))
    gen = OpenAIGenerator(server.url, "my-model", context_size=1000)
    pieces = list(gen.stream(gen.render_chat(MESSAGES), 64, 0.2, 1000))
    assert pieces == ["Hel", "lo [1]."]
    post = server.requests[-1]
    assert (post["method"], post["path"]) == ("POST", "/v1/chat/completions")
    assert post["json"] == {
        "model": "my-model", "messages": MESSAGES, "stream": True, "max_tokens": 64, "temperature": 0.2,
    }
    assert "Authorization" not in post["headers"]


def test_sse_data_joins_data_lines_and_skips_the_rest():
    lines = [b": comment\r\n", b"event: message\n", b"data: {\"a\":\n", b"data: 1}\n", b"\n", b"id: 7\n", b"\n",
             b"data:no-space\n"]  # the last event ends with the stream, without a blank line
    assert list(sse_data(lines)) == ['{"a":\n1}', "no-space"]
    assert list(sse_data([b"data: [DONE]\n", b"\n", b"data: x\n", b"\n"])) == []


def test_render_chat_round_trips_and_a_plain_prompt_is_one_user_message(server: FakeServer):
    gen = OpenAIGenerator(server.url, "m")
    rendered = gen.render_chat(MESSAGES)
    assert rendered.startswith(CHAT_PREFIX) and "咖啡" in rendered
    assert parse_chat(rendered) == MESSAGES
    assert parse_chat("just text") == [{"role": "user", "content": "just text"}]
    assert parse_chat(CHAT_PREFIX + "{broken") == [{"role": "user", "content": CHAT_PREFIX + "{broken"}]


def test_a_server_that_ignores_stream_still_answers(server: FakeServer):
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once [1]."}}]}
    server.routes[("POST", "/v1/chat/completions")] = (200, "application/json", [json.dumps(body).encode()])
    gen = OpenAIGenerator(server.url, "m")
    assert list(gen.stream("hi", 8, 0.0, 100)) == ["All at once [1]."]


def test_the_model_defaults_to_the_first_one_the_server_lists(server: FakeServer):
    gen = OpenAIGenerator(server.url + "/", context_size=777)
    assert gen.model == "fake-model" and gen.context_size == 777
    assert gen.name == f"openai:fake-model@{server.url}"
    list(gen.stream("hi", 8, 0.0, 777))
    assert server.requests[-1]["json"]["model"] == "fake-model"


def test_the_api_key_is_sent_as_a_bearer_token_and_never_shown(server: FakeServer):
    gen = OpenAIGenerator(server.url, "m", api_key="sk-very-secret")
    list(gen.stream("hi", 8, 0.0, 100))
    assert [r["headers"].get("Authorization") for r in server.requests] == ["Bearer sk-very-secret"] * 2
    server.routes[("POST", "/v1/chat/completions")] = (500, "application/json", [b'{"error": "boom"}'])
    with pytest.raises(BackendError) as caught:
        list(gen.stream("hi", 8, 0.0, 100))
    settings = Settings(llm_backend="openai", base_url=server.url, api_key="sk-very-secret")
    for shown in (gen.name, repr(gen), str(caught.value), repr(settings)):
        assert "sk-very-secret" not in shown
    with pytest.raises(ConfigError, match="must not contain a user or password") as caught_url:
        OpenAIGenerator(server.url.replace("127.0.0.1", "me:sk-very-secret@127.0.0.1"))
    assert "sk-very-secret" not in str(caught_url.value)


def test_the_token_estimate_errs_high_against_a_real_tokenizer(server: FakeServer):
    real = LlamaCppGenerator()  # vocabulary only: counts tokens without loading the weights
    texts = [p.read_text(encoding="utf-8") for p in sorted((PROJECT / "corpus").glob("*.[mt][dx]*"))]
    texts += [(PROJECT / "tests" / "data" / name).read_text(encoding="utf-8-sig")
              for name in ("utf8.txt", "nested.md", "page.html", "titles.rst")]
    texts += ["3.14159 2653589793 +1-555-0100 2024-06-01", "| a | b |\n| --- | --- |\n| 1 | 2 |",
              "東京は日本の首都です。", "emoji 🎉🎉🎉 and ünïcödé", "def f(x):\n    return {'k': [x, x**2]}\n"]
    pieces = [t[i:i + 700] for t in texts for i in range(0, len(t), 700)]
    assert len(pieces) > 50
    for piece in pieces:
        assert estimate_tokens(piece) >= real.count_tokens(piece), piece[:80]
    gen = OpenAIGenerator(server.url, "m")
    messages = [{"role": "system", "content": texts[0][:1500]}, {"role": "user", "content": texts[1][:1500]}]
    assert gen.count_tokens(gen.render_chat(messages)) >= real.count_tokens(real.render_chat(messages))


# Errors


def test_connection_refused_names_the_url_and_the_fix():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError) as caught:
        OpenAIGenerator(url, "m")
    message = str(caught.value)
    assert f"{url}/models" in message and "connection refused" in message
    assert "--base-url" in message and "llama_cpp.server" in message


def test_an_unknown_model_is_a_404_that_lists_the_served_ones(server: FakeServer):
    server.routes[("POST", "/v1/chat/completions")] = (
        404, "application/json", [b'{"error": {"message": "model \\"nope\\" not found, try pulling it first"}}'],
    )
    gen = OpenAIGenerator(server.url, "nope")
    with pytest.raises(BackendError) as caught:
        list(gen.stream("hi", 8, 0.0, 100))
    message = str(caught.value)
    assert f"{server.url}/chat/completions answered HTTP 404" in message
    assert 'model "nope" not found' in message and "--llm-model" in message and "fake-model" in message


def test_a_url_without_v1_gets_a_hint(server: FakeServer):
    with pytest.raises(BackendError, match="HTTP 404.*usually answer under /v1"):
        list(OpenAIGenerator(server.url[: -len("/v1")], "m").stream("hi", 8, 0.0, 100))


def test_a_server_error_is_reported_with_its_message(server: FakeServer):
    server.routes[("POST", "/v1/chat/completions")] = (500, "text/plain", [b"CUDA out of memory"])
    with pytest.raises(BackendError, match=r"HTTP 500: CUDA out of memory; the server failed"):
        list(OpenAIGenerator(server.url, "m").stream("hi", 8, 0.0, 100))


def test_a_rejected_key_fails_when_the_generator_is_made(server: FakeServer):
    server.routes[("GET", "/v1/models")] = (401, "application/json", [b'{"error": {"message": "invalid api key"}}'])
    with pytest.raises(BackendError, match="HTTP 401: invalid api key; set RAG_API_KEY"):
        OpenAIGenerator(server.url, "m", api_key="wrong")


def test_no_model_list_and_no_model_name_asks_for_one(server: FakeServer):
    server.routes[("GET", "/v1/models")] = (200, "application/json", [b'{"data": []}'])
    with pytest.raises(BackendError, match="lists no model; pass --llm-model"):
        OpenAIGenerator(server.url)
    del server.routes[("GET", "/v1/models")]
    assert OpenAIGenerator(server.url, "named").model == "named"  # a named model needs no list


@pytest.mark.parametrize("events, expected", [
    (["data: {not json\n\n"], "not JSON"),
    ([delta("ok"), {"error": {"message": "context overflow"}}], "reported an error while answering"),
])
def test_a_broken_stream_is_an_error(server: FakeServer, events: list[Any], expected: str):
    server.routes[("POST", "/v1/chat/completions")] = (200, "text/event-stream", sse(*events))
    with pytest.raises(BackendError, match=expected):
        list(OpenAIGenerator(server.url, "m").stream("hi", 8, 0.0, 100))


def test_a_silent_server_times_out_with_the_setting_to_raise(server: FakeServer):
    gen = OpenAIGenerator(server.url, "m", timeout=0.3)
    server.delay = 1.5
    with pytest.raises(BackendError, match=r"sent nothing for 0.3 s.*RAG_LLM_TIMEOUT"):
        list(gen.stream("hi", 8, 0.0, 100))


# Wiring: factory, Index, CLI


def _docs_index(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "cats.md").write_text("# Cats\n\nCats sleep most of the day and purr when content.\n")
    (docs / "stars.txt").write_text("Stars fuse hydrogen into helium in their cores.\n")
    index_dir = tmp_path / "idx"
    ingest([docs], settings=Settings.load({"index_dir": index_dir}), embedder=HashEmbedder())
    return index_dir


def test_make_generator_picks_the_backend(server: FakeServer):
    gen = make_generator(Settings(llm_backend="openai", base_url=server.url, server_model="m", context_tokens=900))
    assert isinstance(gen, OpenAIGenerator) and gen.context_size == 900 and gen.name == f"openai:m@{server.url}"
    assert isinstance(make_generator(Settings()), LlamaCppGenerator)


def test_index_ask_streams_through_the_server(tmp_path: Path, server: FakeServer):
    settings = Settings.load({
        "index_dir": _docs_index(tmp_path), "llm_backend": "openai", "base_url": server.url,
        "llm_model_name": "m", "min_score": 0.0, "fallback": False, "strategy": "llm",
    })
    pieces: list[str] = []
    answer = Index.open(settings=settings, embedder=HashEmbedder()).ask("Why do cats purr?", on_draft=pieces.append)
    assert pieces == ["Hel", "lo [1]."] and answer.text == "Hello [1]."
    assert answer.models["llm"] == f"openai:m@{server.url}"
    sent = server.requests[-1]["json"]["messages"]
    assert sent[0]["role"] == "system" and "Cats sleep most of the day" in sent[-1]["content"]


@pytest.fixture
def fake_embedder(hash_models: None) -> None:
    """The CLI builds its embedder from the index; make that the hash embedder the index was built with."""


def test_cli_ask_with_the_openai_backend(tmp_path: Path, server: FakeServer, fake_embedder: None, monkeypatch):
    monkeypatch.setenv("RAG_API_KEY", "sk-cli-secret")
    result = runner.invoke(app, [
        "ask", "Why do cats purr?", "--index-dir", str(_docs_index(tmp_path)), "--llm", "openai",
        "--base-url", server.url, "--llm-model", "m", "--min-score", "0", "--json",
    ])
    assert result.exit_code in (0, 4), result.stderr
    data = json.loads(result.stdout)
    assert data["models"]["llm"] == f"openai:m@{server.url}"
    assert "Hello [1]." in (data["llm_answer"] or data["answer"])
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-cli-secret"
    assert "sk-cli-secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("args, expected", [
    (["--llm", "openai"], "--llm openai needs the server's URL: pass --base-url"),
    (["--llm", "gpt"], "must be llama.cpp or openai, got 'gpt'"),
    (["--llm", "openai", "--base-url", "localhost:8080/v1"], "must start with http:// or https://"),
])
def test_cli_backend_settings_errors(tmp_path: Path, args: list[str], expected: str):
    result = runner.invoke(app, ["ask", "what?", "--index-dir", str(tmp_path / "idx"), *args])
    assert result.exit_code == EXIT_ERROR and expected in result.stderr
    assert result.stdout == ""


def test_cli_unreachable_server_fails_before_retrieval(tmp_path: Path, fake_embedder: None):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = runner.invoke(app, ["ask", "x?", "--index-dir", str(_docs_index(tmp_path)), "--llm", "openai",
                                 "--base-url", url, "--json"])
    assert result.exit_code == EXIT_ERROR and f"cannot reach the LLM server at {url}/models" in result.stderr


# The real thing: llama.cpp's OpenAI-compatible server with the default GGUF


_SERVER_MAIN = (
    "import sys; from rag.generators.llama_cpp import guard_amx; guard_amx(); "
    "from llama_cpp.server.__main__ import main; sys.argv[0] = 'llama_cpp.server'; main()"
)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        # The server is started through rag.generators.llama_cpp.guard_amx, as rag itself loads models.
        sys.executable, "-c", _SERVER_MAIN, "--model", str(default_llm_path()), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--verbose", "false",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_ask_through_llama_cpp_server(tmp_path: Path, llama_server: str, fake_embedder: None):
    index_dir = _docs_index(tmp_path)
    gen = OpenAIGenerator(llama_server, "whatever", context_size=2048)
    pieces = list(gen.stream(gen.render_chat([{"role": "user", "content": "Name three colours."}]), 24, 0.0, 2048))
    assert len(pieces) > 1 and "".join(pieces).strip()  # streamed, piece by piece
    result = runner.invoke(app, [
        "ask", "Why do cats purr?", "--index-dir", str(index_dir), "--llm", "openai", "--base-url", llama_server,
        "--llm-model", "whatever", "--min-score", "0", "--max-tokens", "48", "--json",
    ])
    assert result.exit_code in (0, 4), result.stderr  # 4: the small model's answer was not supported
    data = json.loads(result.stdout)
    assert data["models"]["llm"] == f"openai:whatever@{llama_server}"
    assert (data["llm_answer"] or data["answer"]).strip()
