"""The FastAPI application of `rag serve`: its state, middleware, error handlers and
lifespan. The endpoints are in routes.py.

Middleware, outermost first: CORS (only with --cors), then `Guard`, which refuses a
request without the token (when one is set) and a body over the size limit before any
endpoint reads it. Every error leaves as `{"error": {"message", "type", ...}}`.

Background services (a folder watcher, say) are started and stopped with the app: pass
objects with `start()` and `stop()` as `services`; they run after the models are loaded
and stop before the generation queue and the index close.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import RagError
from . import errors
from .follower import IndexFollower
from .openai_chat import BadConversation
from .options import ServeOptions, authorized
from .queue import Busy, Closed, GenerationQueue
from .state import ServerState, Service

log = logging.getLogger(__name__)
# Reachable without the token: liveness checks carry none, and the web page (static
# files holding no data) must load before it can ask the user for the token.
OPEN_PATHS = frozenset({"/health", "/"})
OPEN_PREFIXES = ("/web/",)


def create_app(
    follower: IndexFollower, options: ServeOptions, services: Sequence[Service] = (),
    queue: GenerationQueue | None = None,
) -> FastAPI:
    """The app serving `follower`'s index under `options` (which it does not re-check:
    the caller runs `options.check()` before binding)."""
    from .library_routes import router as library
    from .routes import router
    from .source_routes import router as sources
    from .web import router as web

    state = ServerState(follower, queue or GenerationQueue(options.queue), options, services)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        for service in services:
            await anyio.to_thread.run_sync(service.start)
        try:
            yield
        finally:
            for service in reversed(services):
                await anyio.to_thread.run_sync(service.stop)
            # Requests in flight have finished or were cancelled (uvicorn waits for them
            # first); what is left in the queue is cancelled and the model freed.
            await anyio.to_thread.run_sync(state.queue.close)
            await anyio.to_thread.run_sync(state.jobs.close)  # an ingest running finishes first
            follower.close()

    app = FastAPI(title="rag", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.rag = state
    for part in (router, sources, library, web):
        app.include_router(part)
    _handlers(app)
    app.add_middleware(Guard, token=options.token, max_body=options.max_body)
    if options.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(options.cors), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    return app


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(errors.body(status, message, code, param), status_code=status, headers=headers)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no endpoint {request.method} {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = errors.validation_message(list(exc.errors()))
        return error_response(422, message, "invalid_value", param)

    @app.exception_handler(BadConversation)
    async def bad_conversation(request: Request, exc: BadConversation) -> JSONResponse:
        return error_response(400, str(exc), "invalid_value", "messages")

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return error_response(429, str(exc), "queue_full", headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Closed)
    async def closed(request: Request, exc: Closed) -> JSONResponse:
        return error_response(503, str(exc), "shutting_down")

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        return error_response(errors.status_of(exc), str(exc), errors.code_of(exc))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


class Guard:
    """Pure ASGI middleware: the bearer token (compared in constant time) and the body limit.

    The body is read here, up to `max_body` bytes, and handed on whole: a request that
    declares or sends more is refused with 413 before an endpoint parses any of it.
    """

    def __init__(self, app: Any, token: str | None, max_body: int, open_paths: frozenset[str] = OPEN_PATHS,
                 open_prefixes: tuple[str, ...] = OPEN_PREFIXES) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    def _open(self, path: str) -> bool:
        return path in self.open_paths or (bool(self.open_prefixes) and path.startswith(self.open_prefixes))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and not self._open(scope["path"]) and scope["method"] != "OPTIONS":
            if not authorized(headers.get("authorization", b""), self.token):
                await _send(send, 401, "missing or wrong token: send the header Authorization: Bearer <token>",
                            "invalid_api_key", {"WWW-Authenticate": "Bearer"})
                return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _send(send, 413, f"the request body is over the limit of {self.max_body} bytes", "body_too_large")
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body, ok = await self._read(receive)
            if not ok:
                await _send(send, 413, f"the request body is over the limit of {self.max_body} bytes", "body_too_large")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read(self, receive: Any) -> tuple[bytes, bool]:
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", True  # the client left; the endpoint sees the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later messages: the disconnect, when it comes

    return replay


async def _send(send: Any, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
    await error_response(status, message, code, headers=headers)({"type": "http"}, None, send)
