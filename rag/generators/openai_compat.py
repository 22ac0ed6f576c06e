"""The generation adapter for any OpenAI-compatible server (llama.cpp server, Ollama, vLLM).

Standard library only: urllib posts to `{base_url}/chat/completions` with `stream: true`
and the answer is read from the server-sent events (`data:` lines, up to `[DONE]`).

Compromises, stated here because they differ from the llama.cpp adapter:
- The chat template is the server's business. `render_chat` therefore returns the
  messages as JSON behind a fixed prefix, and `stream` turns that back into the list it
  posts; a prompt without the prefix is sent as one user message.
- The server's tokenizer cannot be asked portably, so `count_tokens` is an estimate meant
  to err high: ASCII letters, and a space before a letter, count 3 to a token; every
  other UTF-8 byte (digit, punctuation, newline, each byte of a non-ASCII character)
  counts as a token, the bound for byte-level BPE; each chat message adds a few tokens
  for the template. English prose comes out ~1.6x SmolLM2's real count, so prompts hold
  fewer sources than the budget could; raise --context-tokens if the server has room.
- The context size is not asked either: it is the `context_tokens` setting, which must
  not exceed the context the server was started with.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import re
import urllib.error
import urllib.request
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

from ..errors import BackendError, ConfigError

log = logging.getLogger(__name__)

CHAT_PREFIX = "rag-chat-messages-v1:"
MESSAGE_OVERHEAD = 8  # role markers and separators a chat template adds to each message
REPLY_OVERHEAD = 8  # the assistant header that opens the reply
_CHEAP = re.compile(r"[A-Za-z]| (?=[A-Za-z])")  # what BPE merges into words, ~4 to a token in English


def estimate_tokens(text: str) -> int:
    """A token count meant to be at least what a real tokenizer gives (see the module docstring)."""
    cheap = len(_CHEAP.findall(text))
    return math.ceil(cheap / 3) + len(text.encode("utf-8", errors="replace")) - cheap


def parse_chat(prompt: str) -> list[dict[str, str]]:
    """The messages `render_chat` serialised, or the prompt as a single user message."""
    if prompt.startswith(CHAT_PREFIX):
        try:
            messages = json.loads(prompt[len(CHAT_PREFIX):])
        except json.JSONDecodeError:
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return messages
    return [{"role": "user", "content": prompt}]


def sse_data(lines: Iterable[bytes]) -> Iterator[str]:
    """The data of each server-sent event, up to `[DONE]`; comments and other fields are skipped."""
    data: list[str] = []
    for raw in [*lines, b""]:  # a stream may end without the blank line after its last event
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line:
            name, _, value = line.partition(":")
            if name == "data":  # a line starting with ":" is a comment: its name is ""
                data.append(value[1:] if value.startswith(" ") else value)
            continue
        if data:
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                return
            yield payload


def _detail(body: bytes) -> str:
    """The server's own error message from an error body (OpenAI, Ollama or FastAPI shape)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            return str(error)[:300]
    return text[:300]


class _StatusError(BackendError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OpenAIGenerator:
    """Generates through an OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        context_size: int = 4096,
        timeout: float = 120.0,
    ) -> None:
        """Ask the server which models it serves, so a wrong URL fails before any retrieval.

        Raises:
            ConfigError: the URL carries a user or password (urllib cannot send them, and
                they would show up in names and messages).
            BackendError: the server cannot be reached, refuses the key, or lists no model
                when none is named.
        """
        if "@" in urlsplit(base_url).netloc:
            raise ConfigError("the base URL must not contain a user or password; set RAG_API_KEY to send a key")
        self.base_url = base_url.rstrip("/")
        self.context_size = context_size
        self.timeout = timeout
        self._api_key = api_key
        self._listed: list[str] = []  # error hints name these
        self._listed = self._list_models(required=model is None)
        if model is None:
            model = self._listed[0]
        elif self._listed and model not in self._listed:
            # llama.cpp's server answers any name with its one model; Ollama accepts "x" for "x:latest".
            log.info("%s lists %s, not %s; asking for it anyway", self.base_url, self._listed, model)
        self.model = model
        self.name = f"openai:{model}@{self.base_url}"

    def count_tokens(self, text: str) -> int:
        if not text.startswith(CHAT_PREFIX):
            return estimate_tokens(text)
        messages = parse_chat(text)
        return sum(estimate_tokens(str(m.get("content", ""))) + MESSAGE_OVERHEAD for m in messages) + REPLY_OVERHEAD

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return CHAT_PREFIX + json.dumps(plain, ensure_ascii=False)

    def stream(self, prompt: str, max_tokens: int, temperature: float, n_ctx: int) -> Iterator[str]:
        """Yield the answer's text pieces as the server sends them.

        `n_ctx` is not sent: the server's context was fixed when it started.
        """
        body = {
            "model": self.model, "messages": parse_chat(prompt), "stream": True,
            "max_tokens": max_tokens, "temperature": temperature,
        }
        url = f"{self.base_url}/chat/completions"
        with self._open("/chat/completions", body) as response:
            try:
                if response.headers.get_content_type() == "application/json":  # the server ignored stream
                    yield from self._pieces(url, response.read().decode("utf-8", errors="replace"), "message")
                    return
                for payload in sse_data(response):
                    yield from self._pieces(url, payload, "delta")
            except (OSError, http.client.HTTPException) as exc:
                raise self._network_error(url, exc) from None

    def _pieces(self, url: str, payload: str, key: str) -> Iterator[str]:
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            raise BackendError(
                f"the LLM server at {url} sent something that is not JSON: {payload[:80]!r}; "
                "is --base-url an OpenAI-compatible endpoint (usually ending in /v1)?"
            ) from None
        if not isinstance(event, dict) or event.get("error"):
            raise BackendError(f"the LLM server at {url} reported an error while answering: {str(event)[:300]}")
        for choice in event.get("choices") or []:
            message = choice.get(key) if isinstance(choice, dict) else None
            text = message.get("content") if isinstance(message, dict) else None
            if isinstance(text, str) and text:
                yield text

    def _list_models(self, required: bool) -> list[str]:
        url = f"{self.base_url}/models"
        try:
            with self._open("/models") as response:
                data = json.loads(response.read())
            listed = [str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m]
        except _StatusError as exc:
            if required or exc.status in (401, 403):
                raise
            log.info("%s", exc)  # a server without /models can still answer a named model
            return []
        except (ValueError, AttributeError, KeyError, OSError):  # not the {"data": [...]} shape
            if required:
                raise BackendError(f"{url} did not answer with a model list; pass --llm-model NAME") from None
            return []
        if required and not listed:
            raise BackendError(f"{url} lists no model; pass --llm-model NAME")
        return listed

    def _open(self, path: str, body: dict[str, Any] | None = None) -> http.client.HTTPResponse:
        headers = {"Accept": "application/json", "User-Agent": "rag"}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Accept": "text/event-stream"})
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        url = self.base_url + path
        log.info("%s %s", request.get_method(), url)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(url, exc.code, _detail(exc.read()) or str(exc.reason)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._network_error(url, exc) from None

    def _http_error(self, url: str, code: int, detail: str) -> BackendError:
        if code in (401, 403):
            hint = "set RAG_API_KEY to a key the server accepts"
        elif code == 404:
            hint = "check --llm-model" + (f" (the server lists {', '.join(self._listed)})" if self._listed else "")
            if not self.base_url.endswith("/v1"):
                hint += " and --base-url: OpenAI-compatible servers usually answer under /v1"
        elif code >= 500:
            hint = "the server failed; its log says why"
        else:
            hint = f"if it is about the context, lower --context-tokens (now {self.context_size}) to the server's"
        return _StatusError(code, f"the LLM server at {url} answered HTTP {code}: {detail}; {hint}")

    def _network_error(self, url: str, exc: BaseException) -> BackendError:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return BackendError(
                f"the LLM server at {url} sent nothing for {self.timeout:g} s; "
                "it may be busy or the prompt long for its hardware: raise RAG_LLM_TIMEOUT"
            )
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        return BackendError(
            f"cannot reach the LLM server at {url}: {reason}; start the server "
            "(e.g. `python -m llama_cpp.server --model M.gguf` or `ollama serve`) or fix --base-url / RAG_BASE_URL"
        )
