"""`rag serve` and `rag mcp`: parse the flags, load the index and its models, and hand
them to rag/serve/ (the HTTP server) or rag/serve/mcp.py (the MCP server).

Status lines go to stderr; stdout stays empty for `rag serve`, and belongs to the MCP
protocol for `rag mcp` over stdio. Registered on the `rag` app by rag/cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, List, Optional, Sequence

import typer

from .cli_options import AnswerFlags, Command, Verbose, grouped
from .cli_watch import Poll

if TYPE_CHECKING:
    from .serve.follower import IndexFollower
    from .watch import WatchEvent

Host = Annotated[str, typer.Option(
    "--host", metavar="ADDR", help="Address to listen on; anything but loopback needs a token (default 127.0.0.1).")]
Port = Annotated[int, typer.Option("--port", metavar="N", min=0, max=65535, help="Port (0: any free one; default 8000).")]
Token = Annotated[Optional[str], typer.Option(
    "--token", metavar="TOKEN", envvar="RAG_SERVE_TOKEN", show_envvar=False,
    help="Require Authorization: Bearer TOKEN on every endpoint but /health (env RAG_SERVE_TOKEN).")]
Cors = Annotated[List[str], typer.Option(
    "--cors", metavar="ORIGIN", help="Let browser pages of this origin call the server (repeatable; default none).")]
Queue = Annotated[int, typer.Option(
    "--queue", metavar="N", min=0, help="Generated answers that may wait for the model; more get 429 (default 4).")]
MaxBody = Annotated[int, typer.Option(
    "--max-body", metavar="BYTES", min=1024, help="Largest request body; larger ones get 413 (default 1000000).")]
WatchFolders = Annotated[List[Path], typer.Option(
    "--watch", metavar="FOLDER", help="Keep this folder in sync with the index while serving, as rag watch does "
    "(repeat for several); each batch is a commit the server picks up.")]
ReadOnly = Annotated[bool, typer.Option(
    "--read-only", help="Refuse ingest, re-sync and remove over HTTP (the web page hides them).")]
AllowRoot = Annotated[List[Path], typer.Option(
    "--allow-root", metavar="DIR", help="A folder under which the web page may ingest a path typed in (repeatable; "
    "default: your home folder on loopback, none on other hosts).")]
ModelId = Annotated[str, typer.Option(
    "--model-id", metavar="NAME", help="The model name /v1/models lists and chat clients pick (default rag).")]

_run: Callable[..., None]  # rag.cli's command runner, given by register()


def register(app: typer.Typer, run: Callable[..., None]) -> None:
    """Add the commands to `app`; `run(verbose, body)` turns library errors into exit codes."""
    global _run
    _run = run
    app.command("serve", cls=Command)(serve)
    app.command("mcp", cls=Command)(mcp)


def _follower(flags: AnswerFlags, watch: Sequence[Path] = (), empty_ok: bool = False) -> "IndexFollower":
    from . import cli_render as show
    from .serve.follower import IndexFollower
    from .stores import backend_for

    settings = flags.settings()
    missing = not backend_for(settings).exists()
    if watch and missing:
        # The follower needs an index to open, so a missing one is built from the folders
        # now; the watcher's own first sync then finds them up to date (a walk and hashes).
        from .ingestion import ingest

        show.err.print("[dim]no index yet: ingesting the watched folders first...[/dim]")
        ingest(watch, settings=settings)
    elif missing and empty_ok:  # the web page ingests the first folder
        from .serve.jobs import create_empty

        where = create_empty(settings)
        show.err.print(f"rag serve: no index at {where}: created an empty one; ingest a folder from the web page")
    show.err.print("[dim]loading the index and its models...[/dim]")
    return IndexFollower(settings, load_generator=settings.strategy != "extractive")


@grouped
def serve(
    flags: AnswerFlags,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    token: Token = None,
    cors: Cors = [],
    queue: Queue = 4,
    max_body: MaxBody = 1_000_000,
    model_id: ModelId = "rag",
    watch: WatchFolders = [],
    poll: Poll = None,
    read_only: ReadOnly = False,
    allow_root: AllowRoot = [],
    verbose: Verbose = False,
) -> None:
    """Serve the index over HTTP: a web page at /, search, ask, and OpenAI-compatible chat completions.

    Endpoints: GET /health, GET /v1/files, POST /v1/search, POST /v1/ask (SSE with
    "stream": true), GET /v1/models, POST /v1/chat/completions, and those the page uses
    (docs/web.md): stored page text, PDF page images with the quote's boxes, the
    original file, ingest with progress, re-sync and remove. The ask flags set the
    defaults a request can override (--where: the filter of requests that give none).
    With --watch FOLDER, a watcher keeps the folders in sync with the index meanwhile
    (one line per batch on stderr). Stop it with Ctrl-C or SIGTERM.
    """

    def body() -> None:
        from . import cli_render as show
        from .serve.options import ServeOptions, require

        options = ServeOptions(host=host, port=port, token=token or None, cors=tuple(cors), queue=queue,
                               max_body=max_body, model_id=model_id, where=tuple(flags.where),
                               read_only=read_only, allow_roots=_roots(allow_root, host))
        options.check()  # before loading anything: a refused --host fails at once
        require("fastapi", "uvicorn")
        from .serve.app import create_app
        from .serve.server import run

        follower = _follower(flags, watch, empty_ok=not read_only)
        app = create_app(follower, options, _watchers(watch, poll, follower))

        def listening(url: str) -> None:
            lock = "token required" if options.token else "no token"
            show.err.print(f"rag serve: listening on {url} ({lock}; Ctrl-C stops)")
            show.err.print(f"rag serve: the web page is at {url}/" + (" (read-only)" if options.read_only else ""))

        run(app, options, on_listening=listening, access_log=verbose, queue=app.state.rag.queue)
        show.err.print("rag serve: stopped")

    _run(verbose, body)


def _roots(given: Sequence[Path], host: str) -> tuple[str, ...]:
    """The folders the page may ingest from: those given, else the home folder when only
    this machine can reach the server (a token-holder elsewhere names them explicitly)."""
    from .serve.options import is_loopback

    if given:
        return tuple(str(p.expanduser().resolve()) for p in given)
    return (str(Path.home().resolve()),) if is_loopback(host) else ()


def _watchers(folders: List[Path], poll: Optional[float], follower: "IndexFollower") -> list:
    """The folder watcher `rag serve --watch` runs as a service of the app (none without
    folders). It shares the server's embedder; the follower sees each batch's commit at
    the next request. A missing folder fails here, before the server listens."""
    if not folders:
        return []
    from . import cli_render as show
    from .cli_watch import lines
    from .watch import Watcher

    def on_event(event: "WatchEvent") -> None:
        for line in lines(event):
            show.err.print(f"rag serve --watch: {line}")

    return [Watcher(folders, follower.settings, embedder=follower.embedder, poll=poll, on_event=on_event)]


@grouped
def mcp(
    flags: AnswerFlags,
    http: Annotated[bool, typer.Option(
        "--http", help="Serve the streamable HTTP transport at /mcp instead of stdio.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    token: Token = None,
    verbose: Verbose = False,
) -> None:
    """Serve the index to MCP clients (coding agents): tools search, ask, list_files, and
    every stored page as a resource rag://SOURCE?page=N.

    Over stdio by default (the client starts `rag mcp`); --http listens instead, under
    the same token rules as rag serve.
    """

    def body() -> None:
        from . import cli_render as show
        from .serve.options import ServeOptions, require
        from .types import Where

        options = ServeOptions(host=host, port=port, token=token or None, where=tuple(flags.where))
        if http:
            options.check()
        else:
            Where.parse(flags.where)
        require("mcp")
        from .serve.mcp import build_server, run_http, run_stdio
        from .serve.queue import GenerationQueue

        def listening(url: str) -> None:
            show.err.print(f"rag mcp: listening on {url}/mcp ({'token required' if options.token else 'no token'})")

        follower, queue = _follower(flags), GenerationQueue(options.queue)
        try:
            server = build_server(follower, queue, where=options.where)
            if http:
                run_http(server, options, on_listening=listening)
            else:
                run_stdio(server)
        finally:  # the answer being written is stopped at its next token; the index closes
            queue.close()
            follower.close()

    _run(verbose, body)
