"""The `rag chat` loop: questions read from stdin, /commands, one answer per turn.

Each answer streams to stdout (or, with --json, is one JSON line there, shaped as
`rag ask --json`); the prompt, status lines and errors go to stderr. An error ends the
turn, not the session.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import cli_render as show

if TYPE_CHECKING:
    from .chat import ChatSession

CHAT_HELP = """/sources  the sources of the last answer
/clear    forget the conversation (the next question starts afresh)
/help     this list
/quit     end the session (also /exit or Ctrl-D)"""


def run(session: "ChatSession", extractive: bool, as_json: bool) -> None:
    """Answer questions until /quit or the end of input."""
    _line_editing()
    show.err.print("[dim]Ask a question; /help lists the commands.[/dim]")
    while (line := _read_line()) is not None:
        if line.startswith("/"):
            if not _command(line, session, as_json):
                return
        elif line:
            _turn(session, line, extractive, as_json)


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
        return show.err.input("> ").strip()
    except EOFError:
        if sys.stdin.isatty():
            show.err.print()
        return None


def _command(line: str, session: "ChatSession", as_json: bool) -> bool:
    """Run a /command; False means end the session."""
    name = line.split()[0].lower()
    if name in ("/quit", "/exit"):
        return False
    if name == "/sources":
        if session.last is None:
            show.err.print("no answer yet: ask a question first")
        else:
            show.sources(session.last, to=show.err if as_json else show.out,  # stdout holds only JSON
                         mode=session.index.settings.mode)
    elif name == "/clear":
        session.clear()
        show.err.print("[dim]conversation cleared[/dim]")
    elif name == "/help":
        show.err.print(show.escape(CHAT_HELP))
    else:
        show.err.print(f"unknown command {show.escape(name)}: try /sources, /clear, /help or /quit")
    return True


def _turn(session: "ChatSession", question: str, extractive: bool, as_json: bool) -> None:
    """Answer one question of the chat."""
    from .errors import RagError

    query = session.query_for(question)
    if query != question:
        show.err.print(f"[dim]searching: {show.escape(query)}[/dim]")
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        streamed.append(piece)
        show.token(piece)

    show_unsupported = session.index.settings.show_unsupported
    try:
        with show.Draft(not as_json and not show_unsupported) as on_draft:
            answer = session.ask(question, on_token=None if as_json else on_token, extractive=extractive,
                                 on_draft=on_draft)
    except (RagError, KeyboardInterrupt) as exc:
        if streamed:
            show.out.print()
        show.failure(exc, as_json)
        return
    if as_json:
        show.print_json(answer.to_dict())
        return
    show.out.print()
    show.verdict(answer, show_unsupported)
    show.chat_cites(answer)
