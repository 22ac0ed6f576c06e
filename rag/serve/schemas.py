"""The request bodies of `rag serve` and their limits, as FastAPI validates them.

Our own endpoints refuse unknown fields (a typo such as "top_k" is a 422 that names it,
not a silently ignored option); the chat completion body ignores them, since OpenAI
clients send many we have no use for (n, top_p, stream_options, ...).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError
from ..types import Where

MAX_K = 100
MAX_TEXT = 4000  # characters of a query or question
MAX_WHERE = 16  # filter conditions
MAX_MESSAGES = 200
MAX_CONVERSATION = 100_000  # characters of a chat's messages together (only the last 8 turns are used)


def parse_where(specs: list[str] | None) -> Where:
    """`where` as the CLI's --where takes it: ["type=pdf", "source=notes/*"]."""
    try:
        return Where.parse(specs or [])
    except ConfigError as exc:
        raise ValueError(str(exc).replace("--where ", "where: ")) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("where", mode="after", check_fields=False)
    @classmethod
    def _where(cls, value: Optional[list[str]]) -> Optional[list[str]]:
        parse_where(value)
        return value


Text = Field(min_length=1, max_length=MAX_TEXT)
WhereField = Field(default=None, max_length=MAX_WHERE, description='Filters as --where takes them: ["type=pdf"].')


class SearchRequest(_Strict):
    query: str = Text
    k: Optional[int] = Field(default=None, ge=1, le=MAX_K)
    mode: Optional[Literal["dense", "lexical", "hybrid"]] = None
    where: Optional[list[str]] = WhereField
    rerank: Optional[bool] = None


class HistoryTurn(BaseModel):
    """An earlier turn of a conversation the client keeps (the web page keeps its own)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_TEXT)
    answer: str = Field(default="", max_length=MAX_CONVERSATION)
    answerable: bool = True


class AskRequest(_Strict):
    question: str = Text
    k: Optional[int] = Field(default=None, ge=1, le=MAX_K)
    mode: Optional[Literal["dense", "lexical", "hybrid"]] = None
    where: Optional[list[str]] = WhereField
    rerank: Optional[bool] = None
    strategy: Optional[Literal["grounded", "llm", "extractive"]] = None
    context_tokens: Optional[int] = Field(default=None, ge=128, le=32768)
    max_tokens: Optional[int] = Field(default=None, ge=1, le=2048)
    stream: bool = False
    history: Optional[list[HistoryTurn]] = Field(
        default=None, max_length=MAX_MESSAGES,
        description="Earlier turns, oldest first: the question is a follow-up, searched and prompted as rag chat does.")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: Optional[str] = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[ContentPart], None] = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(default="rag", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    max_tokens: Optional[int] = Field(default=None, ge=1, le=2048)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1, le=2048)
    temperature: Optional[float] = Field(default=None, ge=0, le=2)

    @field_validator("messages", mode="after")
    @classmethod
    def _sizes(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        """The question (the last user message) has the limit of /v1/ask's, the whole
        conversation one of its own."""
        talk = [m for m in messages if m.role in ("user", "assistant")]
        if talk and talk[-1].role == "user" and len(question := talk[-1].text().strip()) > MAX_TEXT:
            raise ValueError(f"the question (the last user message) has {len(question)} characters; "
                             f"the limit is {MAX_TEXT}")
        total = sum(len(m.text()) for m in messages)
        if total > MAX_CONVERSATION:
            raise ValueError(f"the messages hold {total} characters together; the limit is {MAX_CONVERSATION} "
                             "(send the last few turns)")
        return messages
