"""`rag mcp` end to end: the real command as a child process, driven by the official MCP
SDK's own client over stdio (and over streamable HTTP with a token), against an index
built with the real embedder; `ask` writes with the real SmolLM2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx  # the HTTP client the mcp package uses
import pytest
from typer.testing import CliRunner

from rag.cli import app

PROJECT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    docs = tmp_path_factory.mktemp("mcp-docs")
    (docs / "tokenization.md").write_text((PROJECT / "corpus" / "tokenization.md").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    path = str(tmp_path_factory.mktemp("mcp") / "index")
    assert runner.invoke(app, ["ingest", str(docs), "--index-dir", path, "--quiet"]).exit_code == 0
    return path


def child_env() -> dict[str, str]:
    """What the server process needs of ours (the SDK passes only a safe default set)."""
    return {"PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1", "RAG_CACHE_DIR": os.environ["RAG_CACHE_DIR"],
            "RAG_EMBED_CACHE": "0"}


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def test_stdio_tools_and_resources_with_the_sdk_client(index_dir: str):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, env=child_env(),
                                   args=["-m", "rag.cli", "mcp", "--index-dir", index_dir, "--max-tokens", "32"])
    seen: dict[str, Any] = {}

    async def session() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write, read_timeout_seconds=300) as s:
            await s.initialize()
            tools = {t.name: t for t in (await s.list_tools()).tools}
            seen["tools"] = tools
            seen["templates"] = [t.uri_template for t in (await s.list_resource_templates()).resource_templates]
            seen["search"] = payload(await s.call_tool("search", {"query": "How large is GPT-2's vocabulary?", "k": 2}))
            seen["ask"] = payload(await s.call_tool("ask", {"question": "How many entries are in GPT-2's token vocabulary?"}))
            seen["files"] = payload(await s.call_tool("list_files", {}))
            uri = seen["search"]["hits"][0]["resource"]
            seen["page"] = (await s.read_resource(uri)).contents[0].text
            seen["bad_k"] = await s.call_tool("search", {"query": "x", "k": 0})

    anyio.run(session)
    tools = seen["tools"]
    assert set(tools) == {"search", "ask", "list_files"}
    assert all(len(t.description) > 100 for t in tools.values())  # written for an agent
    assert set(tools["search"].input_schema["properties"]) == {"query", "k", "where"}
    assert seen["templates"] == ["rag://{+source}{?page}"]
    hits = seen["search"]["hits"]
    assert len(hits) == 2 and hits[0]["source"] == "tokenization.md" and hits[0]["text"]
    assert hits[0]["resource"] == "rag://tokenization.md" and hits[0]["text"] in seen["page"]
    answer = seen["ask"]
    assert answer["answerable"] is True and answer["answer"]
    assert answer["citations"] and all(c["source"] == "tokenization.md" and c["resource"] for c in answer["citations"])
    assert any(c["quote"] and c["quote"]["text"] in seen["page"] for c in answer["citations"])
    assert [f["path"] for f in seen["files"]["files"]] == ["tokenization.md"]
    assert seen["bad_k"].is_error and "k must be between 1 and 100" in seen["bad_k"].content[0].text


def test_tool_calls_keep_the_limits_of_rag_serves_bodies(tmp_path: Path):
    """In process, with the fake models: the checks of the HTTP schemas, as tool errors,
    and list_files as `rag list` has it."""
    from mcp.server.mcpserver.exceptions import ToolError

    from fakes import EchoGenerator, HashEmbedder, make_folder, settings
    from rag.ingestion import ingest
    from rag.inventory import list_index
    from rag.serve.follower import IndexFollower
    from rag.serve.mcp import build_server

    ingest([make_folder(tmp_path / "docs")], settings=settings(tmp_path), embedder=HashEmbedder())
    follower = IndexFollower(settings(tmp_path, strategy="extractive"), embedder=HashEmbedder(),
                             generator=EchoGenerator())
    server = build_server(follower)
    refused = {
        "query has 4001 characters; the limit is 4000": ("search", {"query": "x" * 4001}),
        "question has 4001 characters; the limit is 4000": ("ask", {"question": "x" * 4001}),
        "where has 17 conditions; the limit is 16": ("search", {"query": "cats", "where": ["type=md"] * 17}),
        "question is empty": ("ask", {"question": "  "}),
        "k must be between 1 and 100": ("search", {"query": "cats", "k": 101}),
    }

    async def calls() -> dict[str, Any]:
        for message, (tool, args) in refused.items():
            with pytest.raises(ToolError, match=message):
                await server.call_tool(tool, args)
        return payload(await server.call_tool("list_files", {}))

    try:
        assert anyio.run(calls) == json.loads(json.dumps(list_index(follower.settings).to_dict()))
    finally:
        follower.close()


def test_http_transport_needs_the_token(index_dir: str, tmp_path: Path):
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    token = "a-long-enough-token-for-mcp-tests"
    log = tmp_path / "mcp.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "mcp", "--http", "--port", "0", "--index-dir", index_dir, "--extractive",
             "--token", token], stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **child_env()})
    try:
        deadline = time.monotonic() + 180
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        url = found.group(1)
        assert url.endswith("/mcp")
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        found_hits: list[Any] = []

        async def session() -> None:
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
                async with streamable_http_client(url, http_client=client) as (read, write), \
                        ClientSession(read, write) as s:
                    await s.initialize()
                    found_hits.extend(payload(await s.call_tool("search", {"query": "byte-pair encoding"}))["hits"])

        anyio.run(session)
        assert found_hits and found_hits[0]["source"] == "tokenization.md"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
