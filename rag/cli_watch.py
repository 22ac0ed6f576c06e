"""`rag watch`: parse the flags, run rag/watch.py's Watcher until Ctrl-C or SIGTERM, and
show each batch: one line on stderr (unless --quiet), one JSON object per event on
stdout with --json. Registered by rag/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, List, Optional

import typer

from .cli_options import (
    ChunkOverlap, ChunkTokens, EmbedModel, Exclude, Include, Json, Ocr, PdfPassword, PlaceFlags,
    Quiet, Verbose, Workers, grouped,
)

if TYPE_CHECKING:
    from .watch import WatchEvent

Debounce = Annotated[float, typer.Option(
    "--debounce", metavar="SECONDS", min=0.05,
    help="Sync once the folders have been quiet this long (default 1).")]
Poll = Annotated[Optional[float], typer.Option(
    "--poll", metavar="SECONDS", min=0.05,
    help="Look for changes every SECONDS instead of waiting for file-system events (network drives, "
    "containers where events do not arrive).")]


@grouped
def watch(
    paths: Annotated[List[Path], typer.Argument(metavar="FOLDER", help="Folders to keep in sync (recursively).")],
    place: PlaceFlags,
    embed_model: EmbedModel = None,
    chunk_tokens: ChunkTokens = None,
    chunk_overlap: ChunkOverlap = None,
    pdf_password: PdfPassword = [],
    include: Include = [],
    exclude: Exclude = [],
    workers: Workers = None,
    ocr: Ocr = None,
    debounce: Debounce = 1.0,
    poll: Poll = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per batch on stderr.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per batch on stdout (the rag ingest --json fields, "
        "\"event\": \"sync\" and a timestamp), one per line.")] = False,
    verbose: Verbose = False,
) -> None:
    """Keep the index in sync with folders: ingest them, then follow their changes.

    Saved, new, deleted and moved files are synced in batches once the folders are quiet
    (a moved file keeps its vectors). Stop with Ctrl-C or SIGTERM: the batch in progress
    is committed or left out whole, and the next start catches up.
    """
    import logging

    from . import cli_render as show
    from .errors import RagError
    from .runtime import quiet_defaults

    quiet_defaults(verbose)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        _watch(paths, place, dict(embed_model=embed_model, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                                  workers=workers, ocr=ocr), pdf_password, include, exclude, debounce, poll,
               quiet, as_json)
    except (RagError, KeyboardInterrupt) as exc:
        raise typer.Exit(show.failure(exc, as_json)) from None


def _watch(paths: List[Path], place: PlaceFlags, flags: dict, passwords: List[str], include: List[str],
           exclude: List[str], debounce: float, poll: Optional[float], quiet: bool, as_json: bool) -> None:
    import signal

    from . import cli_render as show
    from .watch import Watcher

    def on_event(event: "WatchEvent") -> None:
        if as_json and event.event != "watching":
            show.print_json(event.to_dict())
        if not quiet or event.event in ("error", "missing"):
            for line in lines(event):
                show.err.print(line)

    watcher = Watcher(paths, place.settings(**flags), include=include, exclude=exclude, passwords=passwords,
                      debounce=debounce, poll=poll, on_event=on_event)

    def on_signal(signum: int, frame: object) -> None:
        if watcher.stopped:  # a second Ctrl-C: stop now (the batch in progress is left out whole)
            raise KeyboardInterrupt
        watcher.stop(timeout=0)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not quiet:
        show.err.print("stopped")


def lines(event: "WatchEvent") -> list[str]:
    """The stderr lines of an event: a batch on one line, then one per failed file."""
    from .cli_render import escape

    clock = event.timestamp[11:19]
    if event.event == "watching":
        return [f"{clock} watching {escape(event.message)} (Ctrl-C to stop)"]
    if event.event == "missing":
        return [f"{clock} [yellow]folder gone:[/yellow] {escape(event.path)} "
                "(its files stay in the index; it is synced again when it comes back)"]
    if event.event == "back":
        return [f"{clock} folder back: {escape(event.path)}; syncing it"]
    if event.event == "error":
        return [f"{clock} [red]error:[/red] {escape(event.message)} (trying again)"]
    r = event.report
    assert r is not None
    counts = [f"{n} {label}" for n, label in ((len(r.added), "added"), (len(r.updated), "updated"),
                                              (len(r.removed), "removed"), (len(r.moved), "moved"),
                                              (len(r.failed), "failed")) if n]
    cached = f" ({r.chunks_from_cache} from cache)" if r.chunks_from_cache else ""
    head = f"{clock} {'initial sync' if event.initial else 'synced'}: {', '.join(counts) or 'up to date'}; " \
           f"{r.chunks_embedded} chunks embedded{cached} in {r.seconds:.1f} s; index {r.files} files, {r.chunks} chunks"
    return [head, *(f"  [red]failed:[/red] {escape(f.path)}: {escape(f.reason)} (read again when it changes)"
                    for f in r.failed)]
