"""The `rag` command: parse flags, call the library, render the result.

Flags are defined once in rag/cli_options.py and shown by rag/cli_render.py: results
(answers, hits, summaries, JSON) go to stdout; progress, status and errors to stderr.
Library and rich imports happen inside the commands so that `rag --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, List, Optional

import typer

from .cli_options import (  # noqa: F401  (the EXIT_* codes are part of rag.cli's interface)
    EXIT_ERROR, EXIT_FILES_FAILED, EXIT_INTERRUPTED, EXIT_NOT_ANSWERABLE, AnswerFlags, BaseUrl, ChunkOverlap,
    ChunkTokens, Command, ContextTokens, EmbedModel, Engine, EvalIndexDir, Exclude, Include, Json, Llm, LlmModel, Mode,
    Model, Ocr, PdfPassword, PlaceFlags, QaFile, Quiet, RayAddress, Rebuild, Split, Strategy, TopK, Verbose, Where,
    Workers,
    grouped, settings_from,
)
from .cli_options import EmbedVariant, Gate, NoReader, Reader, Rerank, app_options

app = typer.Typer(
    help="Local retrieval-augmented generation: ingest documents, search them, ask questions with cited answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports markdown-it and friends (~90 ms of `rag --help`)
    # and reads [brackets] in help texts as markup.
    rich_markup_mode=None,
)
app.callback()(app_options)  # rag --version


def _run(verbose: bool, fn: Callable[[], int | None], as_json: bool = False) -> None:
    """Run a command body; its return value is the exit code."""
    import logging

    from .errors import RagError
    from .runtime import quiet_defaults

    quiet_defaults(verbose)  # here, not at import: `rag --help` needs none of it
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        code = fn()
    except (RagError, KeyboardInterrupt) as exc:
        from .cli_render import failure

        raise typer.Exit(failure(exc, as_json)) from None
    if code:
        raise typer.Exit(code)


@app.command(cls=Command)
@grouped
def ingest(
    paths: Annotated[List[Path], typer.Argument(metavar="PATH", help="Files and folders to ingest (folders recursively).")],
    place: PlaceFlags,
    embed_model: EmbedModel = None,
    embed_variant: EmbedVariant = None,
    chunk_tokens: ChunkTokens = None,
    chunk_overlap: ChunkOverlap = None,
    pdf_password: PdfPassword = [],
    rebuild: Rebuild = False,
    include: Include = [],
    exclude: Exclude = [],
    workers: Workers = None,
    engine: Engine = None,
    ray_address: RayAddress = None,
    ocr: Ocr = None,
    quiet: Quiet = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Load, chunk and embed documents into the index.

    Only new and changed files are embedded; files gone from an ingested folder leave
    the index. The summary goes to stdout, progress and per-file problems to stderr.
    """

    def body() -> int:
        from . import cli_render as show
        from .ingestion import WRITER_WAIT, ingest as run_ingest

        settings = place.settings(
            embed_model=embed_model, embed_variant=embed_variant, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            workers=workers, ocr=ocr, engine=engine, ray_address=ray_address)
        with show.progress(quiet) as on_progress:
            report = run_ingest(
                paths, settings=settings, passwords=pdf_password, rebuild=rebuild, progress=on_progress,
                include=include, exclude=exclude, lock_wait=WRITER_WAIT,
            )
        if as_json:
            show.print_json(report.to_dict())
        else:
            show.ingest_summary(report)
        return EXIT_FILES_FAILED if report.failed else 0

    _run(verbose, body, as_json)


@app.command("list", cls=Command)
@grouped
def list_files(
    place: PlaceFlags,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """List the files in the index, with their chunks, pages and ingest time."""

    def body() -> None:
        from . import cli_render as show
        from .inventory import list_index

        found = list_index(place.settings())
        show.print_json(found.to_dict()) if as_json else show.listing(found)

    _run(verbose, body, as_json)


@app.command(cls=Command)
@grouped
def remove(
    paths: Annotated[List[str], typer.Argument(
        metavar="PATH", help="Files or folders to take out (as `rag list` shows them, or on disk).")],
    place: PlaceFlags,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Take files out of the index (the files on disk are not touched)."""

    def body() -> None:
        from . import cli_render as show
        from .inventory import remove as run_remove

        removed = run_remove(paths, place.settings())
        if as_json:
            show.print_json({"removed": removed})
        else:
            show.out.print(f"removed {len(removed)} file(s): {show.escape(', '.join(removed))}")

    _run(verbose, body, as_json)


@app.command(cls=Command)
@grouped
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    *,
    k: TopK = None,
    place: PlaceFlags,
    embed_model: EmbedModel = None,
    mode: Mode = None,
    where: Where = [],
    reader: Reader = None,
    no_reader: NoReader = False,
    rerank: Rerank = None,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Print the chunks that best match the query.

    Each with its similarity, source, page and heading (and the reader's score with --rerank).
    """

    def body() -> None:
        from . import cli_render as show
        from .index import Index  # not rag.pipeline: its ingest and eval imports cost a search ~75 ms
        from .types import Where as Filter

        settings = place.settings(embed_model=embed_model, k=k, mode=mode, reader=reader, no_reader=no_reader,
                                  rerank=rerank)
        index = Index.open(settings=settings)
        hits = index.search(query, settings.top_k, where=Filter.parse(where))
        if as_json:
            show.print_json({"query": query, "hits": [h.to_dict() for h in hits]})
        else:
            show.hits(hits, settings.mode, index.store.location)

    _run(verbose, body, as_json)


@app.command(cls=Command)
@grouped
def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="The question to answer from the documents.")],
    flags: AnswerFlags,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Answer a question from the documents, citing numbered sources.

    The answer is checked against the sources before it is printed (on a terminal the
    model's draft shows, dimmed, while it is written); then which source supports each
    sentence, and the sources. Exit status 4 when the documents do not contain the answer.
    """

    def body() -> int:
        from . import cli_render as show
        from .index import Index
        from .types import Where as Filter

        settings = flags.settings()
        extractive = settings.strategy == "extractive"
        index = Index.open(settings=settings)
        index.load_models(generator=not extractive)  # a bad --model fails before retrieval
        with show.Draft(not as_json and not settings.show_unsupported) as on_draft:
            answer = index.ask(question, on_token=None if as_json else show.token, where=Filter.parse(flags.where),
                               extractive=extractive, on_draft=on_draft)
        if as_json:
            show.print_json(answer.to_dict())
        else:
            show.out.print()
            show.verdict(answer, settings.show_unsupported)
            show.sources(answer, mode=settings.mode, index=index.store.location)
        return 0 if answer.answerable else EXIT_NOT_ANSWERABLE

    _run(verbose, body, as_json)


@app.command(cls=Command)
@grouped
def chat(
    flags: AnswerFlags,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print each answer as one line of JSON (as rag ask --json) on stdout, nothing else there.")] = False,
    verbose: Verbose = False,
) -> None:
    """Ask questions and follow-ups in one session, read from stdin.

    A follow-up that leans on the previous question is searched with its topic words.
    /help lists the commands (/sources, /clear, /quit).
    """

    def body() -> None:
        from . import cli_chat
        from .chat import ChatSession
        from .index import Index
        from .types import Where as Filter

        settings = flags.settings()
        extractive = settings.strategy == "extractive"
        index = Index.open(settings=settings)
        try:
            index.load_models(generator=not extractive)  # a bad --model fails before the first question
            cli_chat.run(ChatSession(index, Filter.parse(flags.where)), extractive, as_json)
        finally:
            index.close()

    _run(verbose, body, as_json)


@app.command("eval", cls=Command)
def eval_command(
    folder: Annotated[Optional[Path], typer.Argument(
        metavar="FOLDER", help="BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.")] = None,
    qa: QaFile = None,
    extractive: Annotated[bool, typer.Option("--extractive", help="With --qa: answer without the LLM.")] = False,
    split: Split = None,
    mode: Mode = None,
    index_dir: EvalIndexDir = None,
    embed_model: EmbedModel = None,
    llm: Llm = None,
    base_url: BaseUrl = None,
    llm_model: LlmModel = None,
    model: Model = None,
    context_tokens: ContextTokens = None,
    strategy: Strategy = None,
    reader: Reader = None,
    no_reader: NoReader = False,
    rerank: Rerank = None,
    gate: Gate = None,
    quiet: Quiet = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Measure retrieval or answers.

    On a BEIR-format FOLDER: nDCG@10, recall@10/100, MRR@10 and latency. With --qa FILE:
    accuracy, false answers and refusals, citation precision, how well the answer was located, latency.
    """

    def body() -> None:
        from . import cli_render as show
        from .evaluate import evaluate, evaluate_qa
        from .index import Index

        generation = {"llm": llm, "base_url": base_url, "llm_model": llm_model, "reader": reader,
                      "no_reader": no_reader, "rerank": rerank, "gate": gate}
        if qa is not None:
            settings = settings_from(
                embed_model=embed_model, mode=mode, index_dir=index_dir, model=model, context_tokens=context_tokens,
                strategy=strategy, extractive=extractive, **generation,
            )
            with show.progress(quiet) as on_progress:
                report = evaluate_qa(qa, Index.open(settings=settings), settings.strategy == "extractive", on_progress)
            show.print_json(report) if as_json else show.eval_qa(report)
            return
        if folder is None:
            raise typer.BadParameter("give a BEIR folder, or --qa FILE")
        settings = settings_from(embed_model=embed_model, mode=mode, **generation)
        with show.progress(quiet) as on_progress:
            result = evaluate(folder, split, settings.mode, settings, index_dir=index_dir, progress=on_progress)
        show.print_json(result.to_dict()) if as_json else show.eval_retrieval(folder, result)

    _run(verbose, body, as_json)


@app.command(cls=Command)
@grouped
def migrate(
    to: Annotated[str, typer.Option(
        "--to", metavar="faiss|milvus", help="The backend to copy the index into (required).")],
    place: PlaceFlags,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an index already at the destination.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Copy the index into the other store (FAISS <-> Milvus).

    Chunk ids, vectors, pages and file records are copied as they are: nothing is embedded again.
    """

    def body() -> None:
        from . import cli_render as show
        from .migrate import migrate as run_migrate

        settings = place.settings()
        with show.progress(quiet) as on_progress:
            report = run_migrate(settings, to, replace=replace, progress=on_progress)
        if as_json:
            show.print_json(report.to_dict())
            return
        show.out.print(
            f"copied {report.files} files, {report.chunks} chunks and {report.pages} pages from {report.source} "
            f"({show.escape(report.source_location)}) to {report.destination} "
            f"({show.escape(report.destination_location)}) in {report.seconds:.1f} s"
        )

    _run(verbose, body, as_json)


from . import cli_reindex, cli_serve  # noqa: E402  (serve, mcp and reindex live in their own modules)
from .cli_watch import watch as _watch  # noqa: E402  (its own module; only typer at import)

cli_serve.register(app, _run)
cli_reindex.register(app, _run)
app.command("watch", cls=Command)(_watch)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
