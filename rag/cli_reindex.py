"""`rag reindex`: parse the flags, re-embed the index's stored chunks with rag/reindex.py
and show the outcome (a line on stdout, or the report with --json). Registered on the
`rag` app by rag/cli.py."""

from __future__ import annotations

from typing import Annotated, Callable

import typer

from .cli_options import Command, EmbedModel, EmbedVariant, Json, PlaceFlags, Verbose, grouped

_run: Callable[..., None]  # rag.cli's command runner, given by register()


def register(app: typer.Typer, run: Callable[..., None]) -> None:
    """Add the command to `app`; `run(verbose, body, as_json)` turns library errors into exit codes."""
    global _run
    _run = run
    app.command("reindex", cls=Command)(reindex)


@grouped
def reindex(
    place: PlaceFlags,
    embed_model: EmbedModel = None,
    embed_variant: EmbedVariant = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Embed the index's stored chunk texts again with another embedder or variant.

    No document is read again. The old index answers until the new one is committed; an
    interrupted run leaves it as it was, and the next run reuses the vectors already
    computed (embedding cache).
    """

    def body() -> None:
        from . import cli_render as show
        from .ingestion import WRITER_WAIT
        from .reindex import reindex as run_reindex

        settings = place.settings(embed_model=embed_model, embed_variant=embed_variant)
        with show.progress(quiet) as on_progress:
            report = run_reindex(settings, lock_wait=WRITER_WAIT, progress=on_progress)
        if as_json:
            show.print_json(report.to_dict())
        elif not report.changed:
            show.out.print(f"the index at {show.escape(report.index_dir)} is already embedded with "
                           f"{show.escape(report.new_embedder)}; nothing to do")
        else:
            show.out.print(
                f"re-embedded {report.chunks} chunks of {report.files} files with {show.escape(report.new_embedder)} "
                f"(was {show.escape(report.old_embedder)}; {report.embedded} computed, the rest from the cache) "
                f"in {report.seconds:.1f} s")

    _run(verbose, body, as_json)
