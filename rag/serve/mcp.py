"""`rag mcp`: the index as an MCP server (the official `mcp` SDK's MCPServer), for coding
agents and other MCP clients.

Tools: `search` (passages), `ask` (a checked answer with quoted citations) and
`list_files`. Every stored page is a resource, `rag://SOURCE?page=N` (`rag://SOURCE` for
a file without pages), and every hit and citation names the one it comes from, so an
agent can open the exact passage. The resource's SOURCE is only looked up among the
index's stored pages: no file on disk is read. Generation goes through the same bounded
queue as `rag serve`, so concurrent tool calls share the one model.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional
from urllib.parse import quote

from ..errors import RagError
from ..types import Hit
from .follower import IndexFollower
from .options import ServeOptions
from .queue import Busy, GenerationQueue, check

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

INSTRUCTIONS = """\
This server searches and answers from a local document index (the user's own files).
Use `ask` for a question whose answer should come from the documents: it returns a
short answer whose every sentence was checked against the sources, with the quoted span
behind each citation, or answerable=false when the documents do not hold the answer
(then say so rather than guessing). Use `search` to find passages yourself (several
angles, exact names or error codes), and `list_files` to see what is indexed. Each hit
and citation has a `resource` URI; read it to see the whole page around the passage."""

SEARCH_HELP = """\
Find the passages of the indexed documents that best match `query` (hybrid ranking:
embeddings and BM25 keywords, so exact names, numbers and error codes work too).
Returns up to k hits, best first: source file, location (page, slide, sheet, heading),
the passage text, scores, and `resource`, the URI of the whole page. `where` filters by
file: ["type=pdf"], ["source=notes/*.md"] (all must hold). Fast; prefer it for
exploring, and `ask` for a checked answer."""

ASK_HELP = """\
Answer `question` from the indexed documents. Returns `answer` (the text, with [n]
markers), `answerable` (false when the documents do not contain the answer: trust it
and do not invent one), and `citations`: for each [n], the source file, location,
passage, the exact quoted span that supports it, and the page's `resource` URI.
Slower than `search` (a local model writes the answer; seconds)."""

LIST_HELP = """\
The files in the index: path, chunks, pages, size, content hash and when each was
ingested, plus the index's embedder and totals. Use it to see what can be searched."""


def resource_uri(source: str, page: int | None) -> str:
    """The resource URI of a stored page."""
    return f"rag://{quote(source, safe='/')}" + ("" if page is None else f"?page={page}")


def _hit(h: Hit) -> dict[str, Any]:
    return {"source": h.source, "location": h.where, "page": h.page, "text": h.text, "score": round(h.score, 4),
            "similarity": None if h.similarity is None else round(h.similarity, 4), "chunk_id": h.chunk_id,
            "resource": resource_uri(h.source, h.page)}


def build_server(follower: IndexFollower, queue: GenerationQueue | None = None,
                 where: tuple[str, ...] = ()) -> "MCPServer":
    """The MCP server over `follower`'s index (not started); `where`: the filters of
    calls that give none."""
    from mcp.server.mcpserver import MCPServer, ResourceSecurity
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
    from mcp.types import ToolAnnotations

    from .schemas import MAX_K

    jobs = queue or GenerationQueue(4)
    default = list(where)
    server: MCPServer = MCPServer(name="rag", instructions=INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    @server.tool(description=SEARCH_HELP, annotations=read_only)
    def search(query: str, k: int = 5, where: Optional[list[str]] = None) -> dict[str, Any]:
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be between 1 and {MAX_K}, got {k}")
        with _told(ToolError):
            filters = _filters("query", query, where, default)
        with _told(ToolError), follower.lease() as index:
            hits = index.search(query, k, where=filters)
        return {"query": query, "hits": [_hit(h) for h in hits]}

    @server.tool(description=ASK_HELP, annotations=read_only)
    def ask(question: str, where: Optional[list[str]] = None) -> dict[str, Any]:
        with _told(ToolError):
            filters = _filters("question", question, where, default)
        generate = follower.settings.strategy != "extractive"

        def job(cancel: Any) -> Any:
            with follower.lease(generate=generate) as index:
                return index.ask(question, where=filters, extractive=not generate, on_draft=check(cancel))

        with _told(ToolError):
            answer = jobs.submit(job).future.result() if generate else job(threading.Event())
        citations = [{**c.to_dict(), "resource": resource_uri(c.hit.source, c.hit.page)}
                     for c in answer.citations if c.hit is not None]
        return {"question": question, "answer": answer.text, "answerable": answer.answerable,
                "abstain_reason": answer.abstain_reason or None, "citations": citations,
                "closest": [_hit(h) for h in answer.hits[:3]] if not answer.answerable else []}

    @server.tool(description=LIST_HELP, annotations=read_only)
    def list_files() -> dict[str, Any]:
        with _told(ToolError):
            return follower.listing().to_dict()

    # The source is a name in the index, never opened as a path: the SDK's path checks
    # (which refuse absolute names, as files ingested one by one have) do not apply.
    @server.resource("rag://{+source}{?page}", name="page", mime_type="text/plain",
                     description="The stored text of one page of an indexed file (as search hits cite it).",
                     security=ResourceSecurity(exempt_params={"source"}))
    def page(source: str, page: str = "") -> str:
        with _told(ResourceNotFoundError), follower.lease() as index:
            text = index.store.page_text(source, _page_number(page))
        if text is None:
            raise ResourceNotFoundError(f"no page {page or '(none)'} of {source!r} in the index; see list_files")
        return text

    return server


@contextlib.contextmanager
def _told(kind: type[Exception]) -> Iterator[None]:
    """Turn the failures a caller can act on into the SDK's error that shows the message
    to the agent (any other exception is reported as a crash, its text withheld)."""
    try:
        yield
    except (RagError, ValueError, Busy) as exc:
        raise kind(str(exc)) from None


def _filters(name: str, text: str, where: list[str] | None, default: list[str]) -> Any:
    """The filters of a tool call, once its text and filters are within the limits
    rag serve's bodies have.

    Raises:
        ValueError: an empty or too long text, too many or malformed conditions.
    """
    from .schemas import MAX_TEXT, MAX_WHERE, parse_where

    if not text.strip():
        raise ValueError(f"{name} is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} has {len(text)} characters; the limit is {MAX_TEXT}")
    if where is not None and len(where) > MAX_WHERE:
        raise ValueError(f"where has {len(where)} conditions; the limit is {MAX_WHERE}")
    return parse_where(default if where is None else where)


def _page_number(page: str) -> int | None:
    if not page:
        return None
    if not page.isdigit():
        raise ValueError(f"page must be a number, got {page!r}")
    return int(page)


def run_stdio(server: "MCPServer") -> None:
    """Serve over this process's stdin and stdout until the client closes them."""
    import anyio

    anyio.run(server.run_stdio_async)


def run_http(server: "MCPServer", options: ServeOptions, on_listening: Callable[[str], None] | None = None) -> None:
    """Serve the streamable HTTP transport at /mcp, with rag serve's token and body rules.

    Raises:
        ConfigError: the address cannot be bound.
    """
    from .app import Guard
    from .server import run

    app = server.streamable_http_app(host=options.host, max_request_body_size=options.max_body)
    run(Guard(app, options.token, options.max_body, open_paths=frozenset(), open_prefixes=()), options,
        on_listening)

