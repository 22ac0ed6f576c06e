"""The OpenAI chat completions dialect: a conversation in, the grounded answer out.

The last user message is the question and the earlier user/assistant pairs are the chat
history, rebuilt into a `ChatSession` (rag/chat.py) so a follow-up is searched and
prompted as `rag chat` does it. The reply's content is the answer with its [n] markers
and a list of the sources they point at; the whole `rag ask --json` object rides along
in the extra field "rag". Everything here is pure: dicts in, dicts out.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Sequence

from ..chat import ChatSession
from ..prompt import NOT_FOUND

if TYPE_CHECKING:
    from ..index import Index
    from ..types import Answer, Where
    from .schemas import ChatMessage

SOURCES_HEADING = "Sources:"


class BadConversation(ValueError):
    """The messages hold no question to answer."""


def conversation(messages: Sequence["ChatMessage"]) -> tuple[list[tuple[str, str, bool]], str]:
    """The earlier turns as (question, answer, answered), and the question to answer now
    (the last user message).

    System and tool messages are left out: the prompt is rag's own. An assistant message
    is the answer to the user message before it; one that says the documents lack the
    answer counts as unanswered, as `rag chat` counts it.

    Raises:
        BadConversation: the last message is not a non-empty user message.
    """
    talk = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1][0] != "user" or not talk[-1][1].strip():
        raise BadConversation("the last message must be the user's question (role user, non-empty content)")
    turns: list[tuple[str, str, bool]] = []
    asked: str | None = None
    for role, text in talk[:-1]:
        if role == "user":
            if asked is not None:
                turns.append((asked, "", False))  # two questions in a row: the first had no reply
            asked = text
        elif asked is not None:
            reply = answer_part(text)
            turns.append((asked, reply, bool(reply) and reply != NOT_FOUND))
            asked = None
    if asked is not None:
        turns.append((asked, "", False))
    return turns, talk[-1][1].strip()


def session_for(index: "Index", turns: Sequence[tuple[str, str, bool]], where: "Where | None" = None) -> ChatSession:
    """A chat session that has been through `turns` (as `conversation` gives them)."""
    session = ChatSession(index, where)
    for question, answer, answered in turns:
        session.remember(question, answer, answered)
    return session


def answer_part(content: str) -> str:
    """An assistant message without the sources list a reply of ours ends with."""
    head, sep, _ = content.rpartition("\n\n" + SOURCES_HEADING + "\n")
    return (head if sep else content).strip()


def sources_list(answer: "Answer") -> str:
    """The cited sources, one line each: `[2] context-windows.pdf, p. 3`."""
    lines = []
    for c in answer.citations:
        if c.hit is not None:
            lines.append(f"[{c.id}] {c.hit.source}" + (f", {c.hit.where}" if c.hit.where else ""))
    return "\n\n" + SOURCES_HEADING + "\n" + "\n".join(lines) if lines else ""


def content_of(answer: "Answer") -> str:
    """The reply a chat client shows: the answer, then its sources."""
    return answer.text.strip() + sources_list(answer)


def _envelope(model: str, kind: str, ident: str | None = None) -> dict[str, Any]:
    return {"id": ident or f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": model}


def completion(answer: "Answer", model: str) -> dict[str, Any]:
    """A `chat.completion` object holding the answer (and all of it under "rag")."""
    message = {"role": "assistant", "content": content_of(answer)}
    return {**_envelope(model, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "rag": answer.to_dict()}


class ChunkWriter:
    """The `chat.completion.chunk` objects of one streamed reply, sharing one id."""

    def __init__(self, model: str) -> None:
        self.base = _envelope(model, "chat.completion.chunk")

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra}

    def first(self) -> dict[str, Any]:
        return self.chunk({"role": "assistant", "content": ""})

    def text(self, piece: str) -> dict[str, Any]:
        return self.chunk({"content": piece})

    def last(self, answer: "Answer") -> dict[str, Any]:
        return self.chunk({}, finish="stop", rag=answer.to_dict())


def models_list(model: str, created: int) -> dict[str, Any]:
    """`GET /v1/models`: the index, as the one model it serves."""
    return {"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "rag"}]}
