"""How a server is exposed: its address, its token, its limits, and the rule that a
server reachable from other machines must have a token."""

from __future__ import annotations

import hmac
import importlib.util
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError
from ..types import Where

MIN_TOKEN_CHARS = 16  # a guessable token on a network port is no protection
DEFAULT_MAX_BODY = 1_000_000  # bytes; a long chat history is a few tens of kB
DEFAULT_QUEUE = 4  # generated answers that may wait behind the one being written


def authorized(header: bytes, token: str | bytes | None) -> bool:
    """Whether an `Authorization` header value carries `token` as a bearer token (always
    true when no token is set); compared in constant time."""
    if token is None:
        return True
    scheme, _, given = header.partition(b" ")
    expected = token.encode() if isinstance(token, str) else token
    # compare_digest over bytes of any length takes the same time whatever they hold
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class ServeOptions:
    """What `rag serve` and `rag mcp --http` expose, and to whom.

    Attributes:
        token: when set, every request but GET /health needs `Authorization: Bearer
            <token>`; required for a host other than loopback.
        cors: origins a browser page may call from (none: CORS off).
        queue: generated answers that may wait behind the running one; one more is 429.
        max_body: the largest request body in bytes (413 past it).
        model_id: the model name /v1/models lists and chat completions answer as.
        where: the filters (as --where takes them) of requests that give none.
        read_only: refuse (and the page hides) ingest, re-sync and remove.
        allow_roots: folders under which a path sent to POST /v1/ingest may lie
            (resolved, symlinks followed); none: no new folder can be ingested over HTTP.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    cors: tuple[str, ...] = ()
    queue: int = DEFAULT_QUEUE
    max_body: int = DEFAULT_MAX_BODY
    model_id: str = "rag"
    where: tuple[str, ...] = ()
    graceful_seconds: float = 10.0  # how long shutdown waits for requests in flight
    read_only: bool = False
    allow_roots: tuple[str, ...] = ()

    def check(self) -> None:
        """Refuse settings that cannot work or would expose the index.

        Raises:
            ConfigError: a non-loopback host without a token, a short token, a bad number.
        """
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"the token is {len(self.token)} characters; use at least {MIN_TOKEN_CHARS}, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"--host {self.host} would let other machines reach the index: set a token with --token "
                "or RAG_SERVE_TOKEN (clients then send Authorization: Bearer <token>), or keep --host 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {self.port}")
        if self.queue < 0:
            raise ConfigError(f"--queue must be 0 or more, got {self.queue}")
        if self.max_body < 1024:
            raise ConfigError(f"--max-body must be at least 1024 bytes, got {self.max_body}")
        Where.parse(self.where)  # a bad --where fails here, not in every request
        for root in self.allow_roots:
            if not Path(root).expanduser().is_dir():
                raise ConfigError(f"--allow-root {root}: not a folder on this machine")
        for origin in self.cors:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"--cors {origin!r}: give an origin such as http://localhost:3000 (or *)")


def require(*modules: str, extra: str = "serve") -> None:
    """Fail with the install line when a module of an extra is missing.

    Raises:
        MissingDependencyError: naming the missing modules and `pip install -e '.[EXTRA]'`.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"{', '.join(missing)} not installed: install the server extra with pip install -e '.[{extra}]'"
        )
