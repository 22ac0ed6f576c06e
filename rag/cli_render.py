"""How the `rag` commands show things: results on stdout, progress and status on stderr.

Two rich consoles: `out` for what a command produces (answers, hits, summaries, JSON),
so `rag ingest > log` and `rag ask ... | less` capture it, and `err` for progress bars,
prompts, warnings and errors (the one error handler, `failure`, is here too). Imported
only once a command runs, so `rag --help` does not pay for rich.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Console
from rich.markup import escape

from .cli_options import EXIT_ERROR, EXIT_INTERRUPTED

if TYPE_CHECKING:
    from .inventory import Listing
    from .types import Answer, Hit, IngestReport

# Piped or redirected (`rag list | cat`, `> file`), stdout has no width to fit: rich
# would fold tables to 80 columns and cut names short, so it gets a width no line reaches.
# (rich already writes no colour codes where stdout is not a terminal.)
PIPED_WIDTH = 100_000
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)

def print_json(data: Any) -> None:
    """One JSON object on one line of stdout (`rag chat --json` prints one per turn)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def failure(exc: BaseException, as_json: bool) -> int:
    """The one error handler, for whole commands and for chat turns: a library error or an
    interrupt as one line on stderr (and with --json as {"error": {...}} on stdout, for
    scripts); returns the exit code. RAG_DEBUG=1 re-raises it with its traceback."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    if not interrupted and os.environ.get("RAG_DEBUG"):
        raise exc
    code = EXIT_INTERRUPTED if interrupted else EXIT_ERROR
    message = "interrupted" if interrupted else str(exc)
    err.print(message if interrupted else f"[red]error:[/red] {escape(message)}")
    if as_json:
        print_json({"error": {"message": message, "type": type(exc).__name__, "exit_code": code}})
    return code


class Progress:
    """Rich progress on stderr: files loaded (with ETA) and chunks embedded (with rate).
    A no-op when disabled; entering it gives the callback to hand the library, or None."""

    LABELS = {"load": "files", "embed": "chunks", "query": "queries", "copy": "chunks"}

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
            label = self.LABELS.get(event.stage, event.stage)
            task = self.tasks[event.stage] = self.bar.add_task(label, total=total, rate="", detail="")
        self.bar.update(task, completed=event.done, total=total, detail=escape(event.detail[-40:]))
        speed = self.bar.tasks[task].speed if event.stage == "embed" else None
        if speed:
            self.bar.update(task, rate=f"{speed:.0f}/s")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def progress(quiet: bool) -> Progress:
    """Progress bars unless --quiet or stderr is not a terminal."""
    return Progress(enabled=not quiet and err.is_terminal)


def ingest_summary(report: "IngestReport") -> None:
    """The summary table (the command's result, on stdout), then one line per repaired,
    damaged or failed file on stderr."""
    from rich.table import Table

    table = Table(title=f"index {report.index_dir}", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    always = ("added", "updated", "removed", "unchanged", "failed", "files in index", "chunks in index", "seconds")
    for label, value in (
        ("added", len(report.added)), ("updated", len(report.updated)), ("removed", len(report.removed)),
        ("moved", len(report.moved)), ("unchanged", len(report.unchanged)), ("failed", len(report.failed)),
        ("repaired text", len(report.repaired)), ("chunks embedded", report.chunks_embedded),
        ("of them from the cache", report.chunks_from_cache),
        ("files in index", report.files), ("chunks in index", report.chunks),
        ("seconds", f"{report.seconds:.1f}"),
        ("skipped (unsupported)", ", ".join(f"{n} {suffix or 'without suffix'}"
                                            for suffix, n in report.skipped.items())),
    ):
        if value or label in always:
            table.add_row(label, str(value))
    out.print(table)
    for path in report.repaired:
        err.print(f"[yellow]repaired:[/yellow] {escape(path)}: mis-decoded text (mojibake) fixed")
    for w in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w.path)}: {escape(w.reason)}")
    for f in report.failed:
        err.print(f"[red]failed:[/red] {escape(f.path)}: {escape(f.reason)}")
    for f in report.skipped_files:
        err.print(f"[dim]skipped:[/dim] {escape(f.path)}: {escape(f.reason)}")


def listing(listing: "Listing") -> None:
    from rich.table import Table

    table = Table(show_edge=False)
    for col, justify in (("file", "left"), ("chunks", "right"), ("pages", "right"), ("ingested", "left"),
                         ("folder", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for path, rec in sorted(listing.files.items()):
        # The folder the file was found in ("-": given by itself); `file` is the name the index shows.
        table.add_row(escape(path), str(rec.chunks), str(rec.pages), rec.ingested_at, escape(rec.root or "-"))
    out.print(table)
    out.print(
        f"{len(listing.files)} files, {listing.chunks} chunks"
        + (f", {listing.bytes_on_disk / 1e6:.1f} MB on disk" if listing.bytes_on_disk else "")
        + f" in {listing.store} ({escape(listing.index_dir)}); "
        f"embedder {listing.embedder} ({listing.dim} dims); last ingest {listing.last_ingest}"
    )


def where(hit: "Hit") -> str:
    """The file and where in it, in the document's own terms ("notes.pdf p. 3",
    "deck.pptx slide 4 notes"), marked when its text was recognised from an image."""
    label = f"{hit.source} {hit.where}" if hit.where else hit.source
    return f"{label} (OCR)" if hit.ocr else label


def snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def scores(hit: "Hit", mode: str, digits: int = 3) -> str:
    """The score a list is ranked by, named after the mode ("hybrid 0.912"), then the
    cosine similarity when it is not that score: ranked by one number and showing another,
    a list looks shuffled."""
    # A hit the reader read shows its score first: with --rerank that is the order.
    read = "" if hit.reader_score is None else f"reader {hit.reader_score:.2f} · "
    ranked = f"{read}{mode} {hit.score:.{digits}f}"
    if mode == "dense" or hit.similarity is None:
        return ranked if mode != "dense" else ranked.replace(f"{mode} ", "cosine ")
    return f"{ranked} · cosine {hit.similarity:.{digits}f}"


def hits(found: "list[Hit]", mode: str = "hybrid", index: str = "") -> None:
    if not found:
        err.print(f"no results: the index{' at ' + escape(index) if index else ''} is empty")
    for h in found:
        out.print(f"[bold]{h.rank}.[/bold] {scores(h, mode)}  [cyan]{escape(where(h))}[/cyan]"
                  + (f"  [dim]{escape(h.heading)}[/dim]" if h.heading else ""))
        out.print(f"   {escape(snippet(h.text))}")


def token(piece: str) -> None:
    """One streamed piece of an answer."""
    out.print(escape(piece), end="")


class Draft:
    """The LLM's words as it writes them, dimmed on stderr, erased once the checked answer
    is ready to print on stdout (a terminal only; elsewhere nothing is shown). Entering it
    gives the callback for `Index.ask(on_draft=...)`, or None."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and err.is_terminal
        self.text = ""
        self.live: Any = None

    def __enter__(self) -> Callable[[str], None] | None:
        if not self.enabled:
            return None
        from rich.live import Live

        self.live = Live("", console=err, transient=True, auto_refresh=False)
        self.live.start()
        return self.update

    def update(self, piece: str) -> None:
        from rich.text import Text

        self.text += piece
        # Wrapped (an unwrapped line the terminal wraps could not be erased), and only the
        # newest words, so the draft fits the screen that Live redraws.
        tail = self.text if len(self.text) <= 600 else "…" + self.text[-600:]
        self.live.update(Text(f"(the model is writing; its answer is checked against the sources before it is "
                              f"shown)\n{tail}", style="dim", no_wrap=False, overflow="fold"), refresh=True)

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()


# What the terminal says after "The documents do not contain the answer.", by the
# policy's reason (rag/answer.py ABSTAIN_REASONS).
def refusal(answer: "Answer") -> str:
    """Why `ask` did not answer, in a user's words."""
    reason = answer.abstain_reason
    if reason == "missing_terms":  # the terms as the question wrote them ("GPT-4", not "gpt-4")
        written = {w.lower(): w for w in re.findall(r"[\w.+/-]*\w", answer.question)}
        return f"No document mentions {', '.join(written.get(t, t) for t in answer.missing)}."
    if reason == "far":
        best = max((h.similarity or 0.0 for h in answer.hits), default=0.0)
        return (f"Nothing in the documents is close to the question (the closest passage has a similarity "
                f"of {best:.2f}, under the floor set by --min-score).")
    if reason == "not_covered":
        return (f"No passage answers it: the closest ones hold only {answer.coverage:.0%} of what the question "
                "asks (rarer words counting more).")
    if reason == "not_stated":
        from .answer_kind import expected

        want = expected(answer.question)
        kind = {"number": "the number", "year": "the year", "name": "the name"}.get(want.kind if want else "", "it")
        return f"The closest passages speak of it, but none gives {kind} the question asks for."
    if reason == "not_answered" and answer.reader is not None:
        return (f"The reader found no passage that answers it (its best score, {answer.reader.score:.2f}, is under "
                f"its threshold of {answer.reader.threshold:.2f}).")
    if reason == "weak_evidence" and answer.gate is not None:
        return (f"The closest passages do not bear out an answer (the answer gate gives them {answer.gate.probability:.2f}, "
                f"under its threshold of {answer.gate.threshold:.2f}; --gate off uses the separate checks instead).")
    if reason == "model_refused":
        return "The model read the sources below and found no answer in them."
    if reason == "no_hits":
        return "Nothing was found to answer from."
    return ""


def _mark(s: "Any") -> str:
    """A checked sentence's verdict in plain words."""
    cites = escape(", ".join(f"[{n}]" for n in s.citations))
    if s.supported:
        return f"[green]supported[/green] by {cites}"
    why = {"echo": "it copies the prompt, not the sources", "question": "it asks or repeats the question",
           "mismatch": f"{cites or 'the source'} gives a different name or number",
           "repetition": "it repeats words", "announces": "it announces what it does not give", "repeat":
           "it says again what an earlier sentence said", "relation": f"{cites or 'the source'} relates them otherwise"}.get(
        s.reason, f"{cites} {'does' if len(s.citations) == 1 else 'do'} not say this" if s.citations
        else "no source says this")
    return f"[red]NOT SUPPORTED[/red] ({why})"


def verdict(answer: "Answer", show_unsupported: bool = False) -> None:
    """After the answer: which sentences the sources support (all of them, marked, with
    `show_unsupported`; else the supported ones and a count of the rest), the quotes that
    replaced an unsupported answer, or why the documents cannot answer."""
    left_out = [s for s in answer.sentences if not s.supported]
    if answer.strategy == "fallback":
        if show_unsupported:  # the model's answer was streamed: the quotes come after it
            out.print("\n[yellow]The sources do not support that answer; what they say:[/yellow]")
            out.print(escape(answer.text))
        else:
            err.print("[dim]The model's answer is not supported by the sources, so this is what the sources "
                      "say (--show-unsupported shows the model's answer).[/dim]")
    elif answer.strategy in ("llm", "llm+quote") and answer.sentences:
        out.print()
        whole = show_unsupported or answer.text.startswith(answer.draft)  # nothing was left out of the text
        for s in answer.sentences:
            if s.supported or whole:
                out.print(f"  {_mark(s)}: {escape(snippet(s.text, 100))}")
        if left_out and not whole:
            n = len(left_out)
            err.print(f"[dim]{n} sentence{'s' if n > 1 else ''} of the model's answer left out: the sources do not "
                      f"support {'them' if n > 1 else 'it'} (--show-unsupported shows them).[/dim]")
    elif answer.strategy == "abstain" and refusal(answer):
        out.print(f"[yellow]{escape(refusal(answer))}[/yellow]")


def sources(answer: "Answer", to: Console = out, mode: str = "hybrid", index: str = "") -> None:
    """The numbered sources with how each was used and the passage quoted from it (or the
    closest chunks when none could answer); `to` is err in `rag chat --json`."""
    cited = {c.id: ("the answer repeats it, uncited" if c.attributed else "cited") for c in answer.citations}
    if not answer.sources:
        if answer.hits:
            to.print("\n[bold]Closest passages[/bold] (none of them answers the question)")
            for h in answer.hits:
                to.print(f"  [cyan]{escape(where(h))}[/cyan] ({scores(h, mode, 2)})  {escape(snippet(h.text, 110))}")
        else:
            err.print(f"no sources: the index{' at ' + escape(index) if index else ''} is empty")
        return
    to.print("\n[bold]Sources[/bold]")
    quotes = {c.id: c.quote for c in answer.citations if c.quote is not None}
    for n, hit in enumerate(answer.sources, start=1):
        mark = f"[green]{cited[n]}[/green]" if n in cited else "[dim]not cited[/dim]"
        to.print(f"  [{n}] [cyan]{escape(where(hit))}[/cyan] ({scores(hit, mode, 2)}; {mark})  "
                 f"{escape(snippet(hit.text, 110))}")
        quote = quotes.get(n)
        if quote is not None:
            to.print(f"      [italic]\u201c{emphasised(quote, answer.answer_span)}\u201d[/italic] "
                     f"[dim](characters {quote.start}-{quote.end} of the page text)[/dim]")
    for c in answer.citations:
        if not c.valid:
            to.print(f"  [{c.id}] [red]cited, but there is no source {c.id}[/red]")
    if not answer.citations and answer.answerable:
        err.print("[yellow]note:[/yellow] the answer cites no source")


def emphasised(quote: "Any", span: "Any", width: int = 240) -> str:
    """The quote as markup, the located answer span in bold when it lies inside it."""
    inside = (span is not None and span.source == quote.source and span.page == quote.page
              and quote.start <= span.start and span.end <= quote.end)
    if not inside:
        return escape(snippet(quote.text, width))
    a, b = span.start - quote.start, span.end - quote.start
    # a NUL stands for the span while snippet() folds white space, so the space next to it stays
    before, middle = snippet(quote.text[:a] + "\x00", width)[:-1], " ".join(quote.text[a:b].split())
    after = snippet("\x00" + quote.text[b:], max(2, width - len(before) - len(middle)))[1:]
    return f"{escape(before)}[bold underline]{escape(middle)}[/bold underline]{escape(after)}"


def chat_cites(answer: "Answer") -> None:
    """The short list of cited sources after a chat answer (/sources shows them in full)."""
    cited = [f"[{c.id}] {where(c.hit)}" for c in answer.citations if c.hit is not None]
    if cited:
        err.print(f"[dim]{escape('cites ' + ', '.join(cited))}; /sources for more[/dim]")


def eval_retrieval(folder: Any, result: Any) -> None:
    out.print(f"{folder} split {result.split}, {result.queries} queries, mode {result.mode}")
    for key, value in result.metrics.items():
        out.print(f"  {key:<11} {value:.4f}")
    out.print(f"  latency    p50 {result.latency_ms['p50']:.1f} ms, p95 {result.latency_ms['p95']:.1f} ms per query")


def eval_qa(report: dict[str, Any]) -> None:
    for key, value in report.items():
        out.print(f"  {key:<21} {value}")
