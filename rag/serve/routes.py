"""The endpoints of `rag serve`. Each answers with the object the CLI's --json prints
(the same `to_dict()`), so an HTTP client and a script reading `rag ask --json` see the
same thing.

Searches, listings and extractive answers run in the thread pool, side by side. Anything
that needs the LLM is a job of the generation queue (queue.py): one at a time, a bounded
number waiting, 429 past that. A client that goes away cancels its job.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import RagError
from . import errors, openai_chat
from .options import authorized
from .queue import Cancelled, Closed, Ticket, check
from .schemas import AskRequest, ChatRequest, SearchRequest, parse_where
from .state import ServerState

router = APIRouter()
_END = object()  # the job is over: no more pieces
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT_SECONDS = 10.0  # a stream quiet this long (queued, or the answer being checked) gets a comment line


def _state(request: Request) -> ServerState:
    return request.app.state.rag


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness: the index, the models loaded and the generation queue. Open to all (a
    liveness probe carries no token), so where the index lives (a path, a Milvus URI) is
    only told to a request with the token, or when none is set."""
    s = _state(request)
    follower = s.follower
    index = await run_in_threadpool(follower.describe)
    header = request.headers.get("authorization", "").encode("latin-1")
    if not authorized(header, s.options.token or None):
        index.pop("location")
    models = {"embedder": follower.embedder.name,
              "llm": follower.generator.name if follower.generator_loaded else None,
              "reader": getattr(follower.reader, "name", None) if follower.reader is not None else None}
    return {"status": "ok", "index": index, "models": models,
            "queue": {"depth": s.queue.depth, "capacity": s.queue.size + 1}, "uptime_s": round(time.time() - s.started, 1)}


@router.get("/v1/files")
async def files(request: Request) -> dict[str, Any]:
    """What `rag list --json` prints."""
    return (await run_in_threadpool(_state(request).follower.listing)).to_dict()


@router.post("/v1/search")
async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
    """What `rag search --json` prints."""
    follower = _state(request).follower

    def run() -> dict[str, Any]:
        with follower.lease() as index:
            hits = index.search(body.query, body.k, body.mode, _where(body.where, request), rerank=body.rerank)
        return {"query": body.query, "hits": [h.to_dict() for h in hits]}

    return await run_in_threadpool(run)


def _where(given: list[str] | None, request: Request) -> Any:
    return parse_where(list(_state(request).options.where) if given is None else given)


def _overrides(body: AskRequest | ChatRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(body, AskRequest):
        out = {"strategy": body.strategy, "context_tokens": body.context_tokens, "rerank": body.rerank}
        tokens = body.max_tokens
    else:
        out = {"temperature": body.temperature}
        tokens = body.max_completion_tokens or body.max_tokens
    out["max_answer_tokens"] = tokens
    return {k: v for k, v in out.items() if v is not None}


@router.post("/v1/ask")
async def ask(body: AskRequest, request: Request) -> Response:
    """What `rag ask --json` prints; with "stream": true, Server-Sent Events: `token`
    events with the model's text as it writes, then one `answer` event with the object.
    With "history" (earlier turns), a follow-up in a conversation, as `rag chat` asks it."""
    s = _state(request)
    overrides = _overrides(body)
    strategy = overrides.get("strategy", s.follower.settings.strategy)
    where = _where(body.where, request)

    def answer(cancel: threading.Event, on_draft: Callable[[str], None] | None = None) -> Any:
        generate = strategy != "extractive"
        stop = check(cancel)

        def draft(piece: str) -> None:
            stop(piece)
            if on_draft:
                on_draft(piece)

        with s.follower.lease(generate=generate, **overrides) as index:
            history, query = _chat(index, body)
            return index.ask(body.question, body.k, mode=body.mode, where=where, extractive=not generate,
                             on_draft=draft, history=history, query=query)

    if not body.stream:
        if strategy == "extractive":
            return JSONResponse((await run_in_threadpool(answer, threading.Event())).to_dict())
        result = await _wait(s.queue.submit(answer), request, lambda: s.queue.closing)
        return JSONResponse(result.to_dict()) if result is not None else _gone()

    def event(kind: str, data: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    return _stream(s, answer, on_piece=lambda p: event("token", {"text": p}),
                   on_answer=lambda a: [event("answer", a.to_dict())],
                   on_error=lambda status, e: event("error", errors.body(status, str(e), errors.code_of(e))),
                   use_queue=strategy != "extractive")


def _chat(index: Any, body: AskRequest) -> tuple[list[tuple[str, str]], str | None]:
    """The prompt's history and the standalone query of a follow-up, as `rag chat` makes
    them (rag/chat.py); none for a first question."""
    if not body.history:
        return [], None
    session = openai_chat.session_for(index, [(t.question, t.answer, t.answerable) for t in body.history])
    query = session.query_for(body.question)
    return session.history, query if query != body.question else None


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    s = _state(request)
    return openai_chat.models_list(s.options.model_id, int(s.started))


@router.get("/v1/models/{model}")
async def model(model: str, request: Request) -> dict[str, Any]:
    s = _state(request)
    if model != s.options.model_id:
        raise HTTPException(404, f"no model {model!r}: this server serves {s.options.model_id!r}")
    return openai_chat.models_list(s.options.model_id, int(s.started))["data"][0]


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request) -> Response:
    """OpenAI chat completions over the index: the last user message is the question."""
    s = _state(request)
    overrides = _overrides(body)
    model_id = s.options.model_id
    generate = s.follower.settings.strategy != "extractive"
    turns, question = openai_chat.conversation(body.messages)  # a bad conversation is a 400 before any work

    def answer(cancel: threading.Event, on_token: Callable[[str], None] | None = None) -> Any:
        with s.follower.lease(generate=generate, **overrides) as index:
            session = openai_chat.session_for(index, turns, parse_where(list(s.options.where)))
            return session.ask(question, on_token=on_token, extractive=not generate, on_draft=check(cancel))

    if not body.stream:
        result = await _wait(s.queue.submit(answer), request, lambda: s.queue.closing) if generate else \
            await run_in_threadpool(answer, threading.Event())
        return JSONResponse(openai_chat.completion(result, model_id)) if result is not None else _gone()

    chunks = openai_chat.ChunkWriter(model_id)

    def data(obj: Any) -> str:
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    def finish(a: Any) -> list[str]:
        tail = openai_chat.sources_list(a)
        return [*([data(chunks.text(tail))] if tail else []), data(chunks.last(a)), "data: [DONE]\n\n"]

    return _stream(s, answer, on_piece=lambda p: data(chunks.text(p)), on_answer=finish,
                   on_error=lambda status, e: data(errors.body(status, str(e), errors.code_of(e))) + "data: [DONE]\n\n",
                   first=data(chunks.first()), use_queue=generate)


async def _wait(ticket: Ticket[Any], request: Request, closing: Callable[[], bool]) -> Any:
    """The job's result; None if the client went away first (the job is then cancelled).

    Raises:
        Closed: the server stopped the job because it is shutting down.
    """
    result = asyncio.wrap_future(ticket.future)
    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=0.25)
            if done:
                if result.cancelled():  # dropped from the queue before it started
                    raise Cancelled()
                return result.result()
            if await request.is_disconnected():
                return None
            if ticket.cancel_event.is_set() and closing():
                raise Closed()  # stopped by the shutdown; llama.cpp ends it at its next token
    except Cancelled:
        if closing():
            raise Closed() from None
        return None
    finally:
        if not result.done():
            ticket.cancel()


def _gone() -> Response:
    return Response(status_code=499)  # nginx's "client closed request": nobody reads it


def _stream(
    s: ServerState, job: Callable[..., Any], on_piece: Callable[[str], str], on_answer: Callable[[Any], list[str]],
    on_error: Callable[[int, Exception], str], first: str | None = None, use_queue: bool = True,
) -> StreamingResponse:
    """Run `job(cancel, on_piece)` (queued, or in the thread pool when it needs no LLM)
    and stream its pieces as they come, then its result. Admission happens here, so a
    full queue is a plain 429 before any event is sent."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[Any] = asyncio.Queue()

    def push(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(pieces.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server stopped
            pass

    if use_queue:
        ticket = s.queue.submit(lambda cancel: job(cancel, push))
    else:
        cancel = threading.Event()
        future = asyncio.wrap_future(loop.run_in_executor(None, job, cancel, push))  # type: ignore[arg-type]
        ticket = Ticket(future, cancel)  # type: ignore[arg-type]
    ticket.future.add_done_callback(lambda _: push(_END))

    async def events() -> AsyncIterator[str]:
        finished = False
        try:
            if first:
                yield first
            quiet = time.monotonic()
            while True:
                try:
                    item = await asyncio.wait_for(pieces.get(), timeout=0.5)
                except asyncio.TimeoutError:
                    if ticket.cancel_event.is_set() and s.queue.closing:
                        # Stopped by the shutdown while the model reads the prompt (it can
                        # only stop between tokens): end the stream now, not at the timeout.
                        yield on_error(503, Closed())
                        return
                    if time.monotonic() - quiet > HEARTBEAT_SECONDS:
                        quiet = time.monotonic()
                        yield ": waiting for the model\n\n"  # an SSE comment: keeps proxies from timing out
                    continue
                quiet = time.monotonic()
                if item is _END:
                    break
                yield on_piece(item)
            finished = True
            try:
                answer = ticket.future.result()
            except RagError as exc:
                yield on_error(errors.status_of(exc), exc)
                return
            except (Cancelled, CancelledError):  # stopped by the shutdown: the client is still there
                yield on_error(503, Closed())
                return
            except Exception as exc:  # noqa: BLE001  (the status line is sent: report it in the stream)
                yield on_error(500, exc)
                return
            for line in on_answer(answer):
                yield line
        finally:
            if not finished:  # the client went away (or the server is stopping): stop the model
                ticket.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
