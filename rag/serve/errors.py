"""Errors as the OpenAI API shapes them, so any OpenAI client reports them properly:
`{"error": {"message": ..., "type": ..., "param": null, "code": ...}}` with the HTTP
status that says who should act (4xx the client, 5xx the server)."""

from __future__ import annotations

from typing import Any

from ..errors import (
    BackendError, ConfigError, IndexCorruptError, IndexMismatchError, IndexNotFoundError, ModelNotFoundError, RagError,
)

# The type names OpenAI uses for each kind of failure.
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
         422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 502: "server_error",
         503: "server_error"}


def body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": TYPES.get(status, "server_error" if status >= 500 else
                                                            "invalid_request_error"),
                      "param": param, "code": code}}


def status_of(exc: RagError) -> int:
    """The HTTP status for a library error: a bad value is the request's fault; a missing
    or damaged index or model, or an unreachable LLM server, is the server's."""
    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, (IndexNotFoundError, IndexCorruptError, IndexMismatchError, ModelNotFoundError)):
        return 503
    if isinstance(exc, BackendError):
        return 502
    return 500


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """One readable line from pydantic's errors, and the field the first one names."""
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    first = errors[0].get("loc", ()) if errors else ()
    param = ".".join(str(x) for x in first if x != "body") or None
    return "invalid request: " + "; ".join(parts), param


def code_of(exc: BaseException) -> str:
    """The `code` of an error event in a stream: the shutdown's, or the error's class."""
    return "shutting_down" if type(exc).__name__ == "Closed" else type(exc).__name__
