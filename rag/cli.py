"""The `rag` command: parse flags, call the library, render the result.

Results (answers, hits, JSON) go to stdout; progress, status and errors go to stderr.
Library imports happen inside the commands so that `rag --help` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from .chat import ChatSession
    from .config import Settings
    from .types import Answer, Hit, IngestReport

app = typer.Typer(
    help="Local retrieval-augmented generation: ingest documents, search them, ask questions with cited answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_FILES_FAILED = 3
EXIT_NOT_ANSWERABLE = 4

IndexDir = typer.Option(None, "--index-dir", help="Index directory (env RAG_INDEX_DIR; default indexes/default).")
StoreOpt = typer.Option(None, "--store", help="Where the index lives: faiss or milvus (env RAG_STORE; default faiss).")
MilvusUriOpt = typer.Option(
    None, "--milvus-uri",
    help="Milvus database: a milvus-lite file (*.db) or a server URL (env RAG_MILVUS_URI; default INDEX_DIR/milvus.db).",
)
MilvusCollectionOpt = typer.Option(
    None, "--milvus-collection", help="Prefix of the index's Milvus collections (env RAG_MILVUS_COLLECTION; default rag)."
)
EmbedModel = typer.Option(
    None, "--embed-model", help="Local sentence-transformers model directory (env RAG_EMBED_MODEL)."
)
JsonFlag = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else there.")
Verbose = typer.Option(False, "--verbose", "-v", help="Log what the library does to stderr.")
ModeOpt = typer.Option(None, "--mode", help="Retrieval: dense, lexical or hybrid (env RAG_MODE; default hybrid).")
StrategyOpt = typer.Option(
    None, "--strategy",
    help="How to answer: grounded (the LLM's answer, plus the source passages it does not say), "
    "llm (the LLM's answer alone) or extractive (source sentences, no LLM) (env RAG_STRATEGY, default grounded).",
)
# Options that `ask` and `chat` share.
TopKOpt = typer.Option(None, "-k", "--top-k", help="Chunks to retrieve (env RAG_TOP_K; default 5).")
ModelOpt = typer.Option(None, "--model", help="GGUF model file (env RAG_MODEL; default SmolLM2-135M-Instruct).")
ContextTokensOpt = typer.Option(
        None, "--context-tokens", help="Prompt + answer token budget, capped at the model's context (env RAG_CONTEXT_TOKENS)."
    )
MaxTokensOpt = typer.Option(None, "--max-tokens", help="Longest answer in tokens (env RAG_MAX_TOKENS).")
TemperatureOpt = typer.Option(None, "--temperature", help="Sampling temperature; 0 is greedy (env RAG_TEMPERATURE).")
MinScoreOpt = typer.Option(
        None, "--min-score", help="Answer only if the best chunk's similarity reaches this (env RAG_MIN_SCORE; default 0.25)."
    )
ExtractiveOpt = typer.Option(
        False, "--extractive", help="Answer with the best-matching source sentences, without the LLM (instant)."
    )
MinCoverageOpt = typer.Option(
    None, "--min-coverage",
    help="Answer only if a source passage covers this share of the question's words, rarer words weighing more "
    "(env RAG_MIN_COVERAGE, default 0.2).",
)
WhereOpt = typer.Option(
    [], "--where", help="Filter hits: source=GLOB or type=EXT (repeatable; all must hold), e.g. --where type=pdf."
)
LlmOpt = typer.Option(
    None, "--llm", help="Generation backend: llama.cpp (local GGUF) or openai (a server) (env RAG_LLM; default llama.cpp)."
)
BaseUrlOpt = typer.Option(
    None, "--base-url", help="OpenAI-compatible server for --llm openai, e.g. http://127.0.0.1:8080/v1 (env RAG_BASE_URL)."
)
LlmModelOpt = typer.Option(
    None, "--llm-model", help="Model name to ask the server for (env RAG_LLM_MODEL; default the first it lists)."
)


def _place(store: str | None, milvus_uri: str | None, milvus_collection: str | None) -> dict[str, Any]:
    """The settings that say where an index lives, as the store options give them."""
    return {"store": store, "milvus_uri": milvus_uri, "milvus_collection": milvus_collection}


def _settings(**overrides: Any) -> "Settings":
    from .config import Settings

    return Settings.load(overrides)


def _run(verbose: bool, fn: Callable[[], int | None]) -> None:
    """Run a command body, turning library errors into one line on stderr."""
    from .errors import RagError

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        code = fn()
    except RagError as exc:
        if os.environ.get("RAG_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    if code:
        raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def ingest(
    paths: List[Path] = typer.Argument(..., help="Files and folders to ingest (folders recursively)."),
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    embed_model: Optional[str] = EmbedModel,
    chunk_tokens: Optional[int] = typer.Option(None, help="Chunk size in embedder tokens (env RAG_CHUNK_TOKENS)."),
    chunk_overlap: Optional[int] = typer.Option(None, help="Overlap between chunks in tokens (env RAG_CHUNK_OVERLAP)."),
    pdf_password: List[str] = typer.Option([], "--pdf-password", help="Password to try on encrypted PDFs (repeatable)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start the index afresh (needed to change embedder or chunking)."),
    include: List[str] = typer.Option([], "--include", help="Only files matching this glob (repeatable), e.g. '*.md'."),
    exclude: List[str] = typer.Option([], "--exclude", help="Skip files matching this glob (repeatable), e.g. 'drafts/*'."),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Processes that load and chunk files while the embedder runs (env RAG_WORKERS, default 0)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Load, chunk and embed documents into the index; only new and changed files are embedded."""

    def body() -> int:
        from .pipeline import ingest as run_ingest

        settings = _settings(
            index_dir=index_dir, **_place(store, milvus_uri, milvus_collection),
            embed_model=embed_model, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            workers=workers,
        )
        with _progress(enabled=not quiet and err.is_terminal) as on_progress:
            report = run_ingest(
                paths, settings=settings, passwords=pdf_password, rebuild=rebuild, progress=on_progress,
                include=include, exclude=exclude,
            )
        if as_json:
            _print_json(report.to_dict())
        else:
            _render_ingest(report)
        return EXIT_FILES_FAILED if report.failed else 0

    _run(verbose, body)


class _progress:
    """Rich progress on stderr: files loaded (with ETA) and chunks embedded (with rate).
    A no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Callable[[Any], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
            console=err, transient=True,
        )
        self.bar.start()
        return self.update

    def update(self, event: Any) -> None:
        task = self.tasks.get(event.stage)
        total = event.total or None  # embedding has no known total: the bar pulses
        if task is None:
            label = {"load": "files", "embed": "chunks", "query": "queries", "copy": "chunks"}.get(event.stage, event.stage)
            task = self.tasks[event.stage] = self.bar.add_task(label, total=total, rate="", detail="")
        self.bar.update(task, completed=event.done, total=total, detail=escape(event.detail[-40:]))
        speed = self.bar.tasks[task].speed if event.stage == "embed" else None
        if speed:
            self.bar.update(task, rate=f"{speed:.0f}/s")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def _render_ingest(report: "IngestReport") -> None:
    from rich.table import Table

    table = Table(title=f"index {report.index_dir}", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (
        ("added", len(report.added)), ("updated", len(report.updated)), ("removed", len(report.removed)),
        ("unchanged", len(report.unchanged)), ("failed", len(report.failed)),
        ("repaired text", len(report.repaired)), ("chunks embedded", report.chunks_embedded),
        ("of them from the cache", report.chunks_from_cache),
        ("files in index", report.files), ("chunks in index", report.chunks),
        ("seconds", f"{report.seconds:.1f}"),
    ):
        if value or label in ("added", "updated", "removed", "unchanged", "failed", "files in index", "chunks in index", "seconds"):
            table.add_row(label, str(value))
    err.print(table)
    for path in report.repaired:
        err.print(f"[yellow]repaired:[/yellow] {escape(path)}: mis-decoded text (mojibake) fixed")
    for w in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w.path)}: {escape(w.reason)}")
    for f in report.failed:
        err.print(f"[red]failed:[/red] {escape(f.path)}: {escape(f.reason)}")


@app.command("list")
def list_files(
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Show the files in the index, with chunks, pages and when they were ingested."""

    def body() -> None:
        from .inventory import list_index
        from rich.table import Table

        listing = list_index(_settings(index_dir=index_dir, **_place(store, milvus_uri, milvus_collection)))
        if as_json:
            _print_json(listing.to_dict())
            return
        table = Table(show_edge=False)
        for col, justify in (("file", "left"), ("chunks", "right"), ("pages", "right"), ("ingested", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for path, rec in sorted(listing.files.items()):
            table.add_row(escape(path), str(rec.chunks), str(rec.pages), rec.ingested_at)
        out.print(table)
        out.print(
            f"{len(listing.files)} files, {listing.chunks} chunks"
            + (f", {listing.bytes_on_disk / 1e6:.1f} MB on disk" if listing.bytes_on_disk else "")
            + f" in {listing.store} ({escape(listing.index_dir)}); "
            f"embedder {listing.embedder} ({listing.dim} dims); last ingest {listing.last_ingest}"
        )

    _run(verbose, body)


@app.command()
def remove(
    paths: List[str] = typer.Argument(..., help="Files or folders to take out (as listed by `rag list`, or on disk)."),
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Take files out of the index (the files on disk are not touched)."""

    def body() -> None:
        from .inventory import remove as run_remove

        removed = run_remove(paths, _settings(index_dir=index_dir, **_place(store, milvus_uri, milvus_collection)))
        if as_json:
            _print_json({"removed": removed})
        else:
            err.print(f"removed {len(removed)} file(s): {escape(', '.join(removed))}")

    _run(verbose, body)


def _where(hit: "Hit") -> str:
    return hit.source if hit.page is None else f"{hit.source} p.{hit.page}"


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: Optional[int] = typer.Option(None, "-k", "--top-k", help="How many chunks to return (env RAG_TOP_K; default 5)."),
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    embed_model: Optional[str] = EmbedModel,
    mode: Optional[str] = ModeOpt,
    where: List[str] = WhereOpt,
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Print the chunks that best match the query, with score, source and page."""

    def body() -> None:
        from .pipeline import Index
        from .retrieve import Where

        settings = _settings(
            index_dir=index_dir, **_place(store, milvus_uri, milvus_collection), embed_model=embed_model, top_k=k, mode=mode
        )
        hits = Index.open(settings=settings).search(query, settings.top_k, where=Where.parse(where))
        if as_json:
            _print_json({"query": query, "hits": [h.to_dict() for h in hits]})
            return
        if not hits:
            err.print("no results: the index is empty")
        for h in hits:
            out.print(f"[bold]{h.rank}.[/bold] {h.similarity or 0:.3f}  [cyan]{escape(_where(h))}[/cyan]"
                      + (f"  [dim]{escape(h.heading)}[/dim]" if h.heading else ""))
            out.print(f"   {escape(_snippet(h.text))}")

    _run(verbose, body)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question to answer from the documents."),
    k: Optional[int] = TopKOpt,
    model: Optional[str] = ModelOpt,
    llm: Optional[str] = LlmOpt,
    base_url: Optional[str] = BaseUrlOpt,
    llm_model: Optional[str] = LlmModelOpt,
    context_tokens: Optional[int] = ContextTokensOpt,
    max_tokens: Optional[int] = MaxTokensOpt,
    temperature: Optional[float] = TemperatureOpt,
    min_score: Optional[float] = MinScoreOpt,
    min_coverage: Optional[float] = MinCoverageOpt,
    strategy: Optional[str] = StrategyOpt,
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    embed_model: Optional[str] = EmbedModel,
    mode: Optional[str] = ModeOpt,
    where: List[str] = WhereOpt,
    extractive: bool = ExtractiveOpt,
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Answer a question from the indexed documents, citing numbered sources."""

    def body() -> int:
        from .pipeline import Index
        from .retrieve import Where

        settings = _settings(
            index_dir=index_dir, **_place(store, milvus_uri, milvus_collection),
            embed_model=embed_model, top_k=k, llm_model=model,
            context_tokens=context_tokens, max_answer_tokens=max_tokens, temperature=temperature,
            min_score=min_score, mode=mode, llm_backend=llm, base_url=base_url, llm_model_name=llm_model,
            min_coverage=min_coverage, strategy="extractive" if extractive else strategy,
        )
        filters = Where.parse(where)
        index = Index.open(settings=settings)
        quoting = settings.strategy == "extractive"
        if not quoting:
            index.generator  # load the GGUF before retrieval so a bad --model fails fast
        if as_json:
            answer = index.ask(question, where=filters, extractive=quoting)
            _print_json(answer.to_dict())
            return 0 if answer.answerable else EXIT_NOT_ANSWERABLE

        def on_token(piece: str) -> None:
            out.print(escape(piece), end="")

        answer = index.ask(question, on_token=on_token, where=filters, extractive=quoting)
        out.print()
        _render_verdict(answer)
        _render_sources(answer)
        return 0 if answer.answerable else EXIT_NOT_ANSWERABLE

    _run(verbose, body)


CHAT_HELP = """/sources  the sources of the last answer
/clear    forget the conversation (the next question starts afresh)
/help     this list
/quit     end the session (also /exit or Ctrl-D)"""


@app.command()
def chat(
    llm: Optional[str] = LlmOpt,
    base_url: Optional[str] = BaseUrlOpt,
    llm_model: Optional[str] = LlmModelOpt,
    k: Optional[int] = TopKOpt,
    model: Optional[str] = ModelOpt,
    context_tokens: Optional[int] = ContextTokensOpt,
    max_tokens: Optional[int] = MaxTokensOpt,
    temperature: Optional[float] = TemperatureOpt,
    min_score: Optional[float] = MinScoreOpt,
    min_coverage: Optional[float] = MinCoverageOpt,
    strategy: Optional[str] = StrategyOpt,
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = StoreOpt,
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    embed_model: Optional[str] = EmbedModel,
    mode: Optional[str] = ModeOpt,
    where: List[str] = WhereOpt,
    extractive: bool = ExtractiveOpt,
    verbose: bool = Verbose,
) -> None:
    """Ask questions and follow-ups in one session, reading them from stdin; /help lists the commands."""

    def body() -> None:
        from .chat import ChatSession
        from .pipeline import Index
        from .retrieve import Where

        settings = _settings(
            index_dir=index_dir, **_place(store, milvus_uri, milvus_collection),
            embed_model=embed_model, top_k=k, llm_model=model,
            context_tokens=context_tokens, max_answer_tokens=max_tokens, temperature=temperature,
            min_score=min_score, mode=mode, llm_backend=llm, base_url=base_url, llm_model_name=llm_model,
            min_coverage=min_coverage, strategy="extractive" if extractive else strategy,
        )
        filters = Where.parse(where)
        index = Index.open(settings=settings)
        index.embedder  # load the models once, up front: a bad --model fails before the first question
        if settings.strategy != "extractive":
            index.generator
        session = ChatSession(index, filters)
        _line_editing()
        err.print("[dim]Ask a question; /help lists the commands.[/dim]")
        try:
            while (line := _read_line()) is not None:
                if line.startswith("/"):
                    if not _chat_command(line, session):
                        break
                elif line:
                    _chat_turn(session, line, settings.strategy == "extractive")
        finally:
            index.close()

    _run(verbose, body)


def _line_editing() -> None:
    """Arrow keys and history at an interactive prompt (input() uses readline once imported)."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401
        except ImportError:  # not on Windows
            pass


def _read_line() -> str | None:
    """The next line typed at the `> ` prompt (shown on stderr), stripped; None at end of input."""
    try:
        return err.input("> ").strip()
    except EOFError:
        if sys.stdin.isatty():
            err.print()
        return None


def _chat_command(line: str, session: "ChatSession") -> bool:
    """Run a /command; False means end the session."""
    name = line.split()[0].lower()
    if name in ("/quit", "/exit"):
        return False
    if name == "/sources":
        if session.last is None:
            err.print("no answer yet: ask a question first")
        else:
            _render_sources(session.last)
    elif name == "/clear":
        session.clear()
        err.print("[dim]conversation cleared[/dim]")
    elif name == "/help":
        err.print(escape(CHAT_HELP))
    else:
        err.print(f"unknown command {escape(name)}: try /sources, /clear, /help or /quit")
    return True


def _chat_turn(session: "ChatSession", question: str, extractive: bool) -> None:
    """Answer one question of a chat; an error ends the turn, not the session."""
    from .errors import RagError

    query = session.query_for(question)
    if query != question:
        err.print(f"[dim]searching: {escape(query)}[/dim]")
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        streamed.append(piece)
        out.print(escape(piece), end="")

    try:
        answer = session.ask(question, on_token=on_token, extractive=extractive)
    except (RagError, KeyboardInterrupt) as exc:
        if isinstance(exc, RagError) and os.environ.get("RAG_DEBUG"):
            raise
        if streamed:
            out.print()
        err.print("interrupted" if isinstance(exc, KeyboardInterrupt) else f"[red]error:[/red] {escape(str(exc))}")
        return
    out.print()
    _render_verdict(answer)
    cited = [f"[{c.id}] {_where(c.hit)}" for c in answer.citations if c.hit is not None]
    if cited:
        err.print(f"[dim]{escape('cites ' + ', '.join(cited))}; /sources for more[/dim]")


@app.command("eval")
def eval_command(
    folder: Optional[Path] = typer.Argument(None, help="BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."),
    qa: Optional[Path] = typer.Option(
        None, "--qa", help="Instead: answer a JSONL question set against the index (question, answers, sources, answerable)."
    ),
    extractive: bool = typer.Option(False, "--extractive", help="With --qa: answer without the LLM."),
    split: Optional[str] = typer.Option(None, "--split", help="qrels split [default: test if present, else the only one]."),
    mode: Optional[str] = ModeOpt,
    index_dir: Optional[Path] = typer.Option(
        None, "--index-dir", help="Where the corpus index is cached [default indexes/eval-<folder name>]."
    ),
    embed_model: Optional[str] = EmbedModel,
    llm: Optional[str] = LlmOpt,
    base_url: Optional[str] = BaseUrlOpt,
    llm_model: Optional[str] = LlmModelOpt,
    model: Optional[str] = typer.Option(None, "--model", help="With --qa: GGUF model file (env RAG_MODEL)."),
    context_tokens: Optional[int] = typer.Option(
        None, "--context-tokens", help="With --qa: prompt + answer token budget (env RAG_CONTEXT_TOKENS)."
    ),
    strategy: Optional[str] = StrategyOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Measure retrieval on BEIR-format data (nDCG@10, recall@10/100, MRR@10, latency), or
    with --qa answers: accuracy, citation precision, abstention precision/recall, latency."""

    def body() -> None:
        from .pipeline import Index, evaluate, evaluate_qa

        backend = {"llm_backend": llm, "base_url": base_url, "llm_model_name": llm_model}
        if qa is not None:
            settings = _settings(
                embed_model=embed_model, mode=mode, index_dir=index_dir, llm_model=model, context_tokens=context_tokens,
                strategy="extractive" if extractive else strategy, **backend,
            )
            with _progress(enabled=not quiet and err.is_terminal) as on_progress:
                report = evaluate_qa(qa, Index.open(settings=settings), extractive, on_progress)
            if as_json:
                _print_json(report)
            else:
                for key, value in report.items():
                    out.print(f"  {key:<21} {value}")
            return
        if folder is None:
            raise typer.BadParameter("give a BEIR folder, or --qa FILE")
        settings = _settings(embed_model=embed_model, mode=mode, **backend)
        with _progress(enabled=not quiet and err.is_terminal) as on_progress:
            result = evaluate(folder, split, settings.mode, settings, index_dir=index_dir, progress=on_progress)
        if as_json:
            _print_json(result.to_dict())
            return
        out.print(f"{folder} split {result.split}, {result.queries} queries, mode {result.mode}")
        for key, value in result.metrics.items():
            out.print(f"  {key:<11} {value:.4f}")
        out.print(f"  latency    p50 {result.latency_ms['p50']:.1f} ms, p95 {result.latency_ms['p95']:.1f} ms per query")

    _run(verbose, body)


def _render_verdict(answer: "Answer") -> None:
    """After the streamed answer: which sentences the sources support, the quotes that
    replaced an unsupported answer, or why the documents cannot answer."""
    if answer.strategy == "fallback":
        out.print("\n[yellow]The sources do not support that answer; what they say:[/yellow]")
        out.print(escape(answer.text))
    elif answer.strategy in ("llm", "llm+quote") and answer.sentences:
        out.print()
        for s in answer.sentences:
            mark = "[green]supported[/green]" if s.supported else "[red]NOT SUPPORTED[/red]"
            cites = ", ".join(f"[{n}]" for n in s.citations) or "no source"
            out.print(f"  {mark} by {escape(cites)}: {escape(_snippet(s.text, 100))}")
    elif answer.strategy == "abstain" and answer.missing:
        err.print(f"[dim]no source mentions: {escape(', '.join(answer.missing))}[/dim]")


def _render_sources(answer: "Answer") -> None:
    cited = {c.id: ("matched" if c.attributed else "cited") for c in answer.citations}
    if not answer.sources:
        if answer.hits:
            out.print("\n[bold]Closest chunks[/bold] (too far from the question to answer from)")
            for h in answer.hits:
                out.print(f"  [cyan]{escape(_where(h))}[/cyan] ({h.similarity or 0:.2f})  {escape(_snippet(h.text, 110))}")
        else:
            err.print("no sources: the index is empty")
        return
    out.print("\n[bold]Sources[/bold]")
    quotes = {c.id: c.quote for c in answer.citations if c.quote is not None}
    for n, hit in enumerate(answer.sources, start=1):
        mark = f"[green]{cited[n]}[/green]" if n in cited else "[dim]not cited[/dim]"
        out.print(f"  [{n}] [cyan]{escape(_where(hit))}[/cyan] ({hit.similarity or 0:.2f}, {mark})  {escape(_snippet(hit.text, 110))}")
        quote = quotes.get(n)
        if quote is not None:
            out.print(f"      [italic]\u201c{escape(_snippet(quote.text, 240))}\u201d[/italic] "
                      f"[dim](characters {quote.start}-{quote.end} of the page text)[/dim]")
    for c in answer.citations:
        if not c.valid:
            out.print(f"  [{c.id}] [red]cited, but there is no source {c.id}[/red]")
    if not answer.citations and not answer.answerable:
        return
    if not answer.citations:
        err.print("[yellow]note:[/yellow] the answer cites no source")


@app.command()
def migrate(
    to: str = typer.Option(..., "--to", help="The backend to copy the index into: faiss or milvus."),
    index_dir: Optional[Path] = IndexDir,
    store: Optional[str] = typer.Option(
        None, "--store", help="The backend the index is in now (env RAG_STORE; default faiss)."
    ),
    milvus_uri: Optional[str] = MilvusUriOpt,
    milvus_collection: Optional[str] = MilvusCollectionOpt,
    replace: bool = typer.Option(False, "--replace", help="Overwrite an index already at the destination."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = JsonFlag,
    verbose: bool = Verbose,
) -> None:
    """Copy the index into the other store backend (FAISS <-> Milvus) without embedding again."""

    def body() -> None:
        from .migrate import migrate as run_migrate

        settings = _settings(index_dir=index_dir, **_place(store, milvus_uri, milvus_collection))
        with _progress(enabled=not quiet and err.is_terminal) as on_progress:
            report = run_migrate(settings, to, replace=replace, progress=on_progress)
        if as_json:
            _print_json(report.to_dict())
            return
        err.print(
            f"copied {report.files} files, {report.chunks} chunks and {report.pages} pages from {report.source} "
            f"({escape(report.source_location)}) to {report.destination} ({escape(report.destination_location)}) "
            f"in {report.seconds:.1f} s"
        )

    _run(verbose, body)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
