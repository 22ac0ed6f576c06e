"""Reaching a Milvus database: importing pymilvus, opening a client with limits that suit
where the database is, and turning a failure to open into a RagError that says what to do.

For a milvus-lite file (a URI ending in .db), pymilvus starts milvus-lite's gRPC server
in this process (milvus_lite.server_manager, on a free port), then waits for a Connect
call to it: 10 s unless MilvusClient is given a timeout. A shared connection idle for 30 s
is probed (GetVersion, 5 s) and reconnected with the same limit when the probe fails.
The server's handlers are Python threads of this process: they share its GIL and cores
with the embedder's and llama.cpp's threads, so on a loaded machine that call can miss
10 s with nothing wrong ("Fail connecting to server", seen once in the end-to-end tests).
A local file therefore gets a longer limit and a second try; a server that does not
answer within pymilvus's own 10 s is more likely down, and is reported at once.

gRPC's and pymilvus's own output is quieted by the CLI (rag/runtime.py), not here: a
program using the library keeps its own logging and environment.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import IndexLockedError, MissingDependencyError, RagError

log = logging.getLogger(__name__)

# Seconds pymilvus may wait for the milvus-lite server it starts in this process to answer
# its first call, and how many times to try (see `client`); pymilvus's own limit is 10 s.
LITE_CONNECT_TIMEOUT = 60.0
LITE_CONNECT_ATTEMPTS = 2


def pymilvus() -> Any:
    try:
        import pymilvus as module
    except ImportError:
        raise MissingDependencyError(
            "the Milvus store needs pymilvus, milvus-lite and snowballstemmer: pip install -e '.[milvus]' "
            "in a clone of rag (or pip install pymilvus milvus-lite snowballstemmer)"
        ) from None
    return module


def client(uri: str, token: str | None) -> Any:
    """A MilvusClient for `uri` (a milvus-lite file, or a server's URL); see the module
    docstring for the limits. Raises IndexLockedError or RagError."""
    module = pymilvus()
    lite = uri.endswith(".db")
    attempts = LITE_CONNECT_ATTEMPTS if lite else 1
    for attempt in range(1, attempts + 1):
        try:
            return module.MilvusClient(uri=uri, token=token or "", timeout=LITE_CONNECT_TIMEOUT if lite else None)
        except Exception as exc:
            if not (_connect_failed(exc) and attempt < attempts):
                raise _open_error(uri, exc, lite) from None
            log.warning("milvus-lite for %s did not answer within %g s; trying again", uri, LITE_CONNECT_TIMEOUT)
    raise AssertionError("not reached")


def _connect_failed(exc: Exception) -> bool:
    """pymilvus's "Fail connecting to server" (Status.CONNECT_FAILED): no answer in time."""
    return getattr(exc, "code", None) == 2 and "fail connecting" in str(getattr(exc, "message", exc)).lower()


def _open_error(uri: str, exc: Exception, lite: bool) -> RagError:
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}"
    if lite and _connect_failed(exc):
        return RagError(
            f"milvus-lite did not answer for {uri} within {LITE_CONNECT_TIMEOUT:g} s, {LITE_CONNECT_ATTEMPTS} times: "
            "the machine is probably overloaded; try again when it is quieter, or use a Milvus server: "
            "--milvus-uri http://HOST:19530"
        )
    # pymilvus wraps milvus-lite's own lock error
    if lite and ("lock" in text.lower() or "Open local milvus failed" in text):
        return IndexLockedError(
            f"the milvus-lite file {uri} is open in another process (milvus-lite allows one process at a "
            "time); wait for it to finish, or use a Milvus server: --milvus-uri http://HOST:19530"
        )
    return RagError(f"cannot open Milvus at {uri}: {str(exc).strip()[:300]}")
