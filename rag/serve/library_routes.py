"""The endpoints that change the index from the web page: ingest a folder, re-sync,
remove a file; and the state of those jobs. `--read-only` refuses all the writes (403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..errors import ConfigError
from .jobs import Jobs, within
from .state import ServerState

router = APIRouter()


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096, description="A file or folder on the server's machine.")


class RemoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=4096, description="The file's name in the index (GET /v1/files).")


def _state(request: Request) -> ServerState:
    return request.app.state.rag


def _writable(request: Request) -> Jobs:
    s = _state(request)
    if s.options.read_only:
        raise HTTPException(403, "this server is read-only (--read-only): it does not ingest, re-sync or remove")
    return s.jobs


@router.get("/v1/ingest")
async def jobs(request: Request) -> dict[str, Any]:
    """The write jobs of this server's life, newest last, the files that failed in them
    with their reasons, the skipped files by suffix, and what the server allows."""
    s = _state(request)
    return {"read_only": s.options.read_only, "allow_roots": list(s.options.allow_roots),
            "jobs": [j.to_dict() for j in s.jobs.all()], "failed": s.jobs.failures(), "skipped": s.jobs.skipped()}


@router.post("/v1/ingest", status_code=202)
async def start_ingest(body: IngestRequest, request: Request) -> JSONResponse:
    """Ingest a file or folder under an allowed root; poll GET /v1/ingest/{id} for progress."""
    jobs_ = _writable(request)
    try:
        path = within(body.path, _state(request).options.allow_roots)
    except ConfigError as exc:
        raise HTTPException(403, str(exc)) from None
    try:
        job = await run_in_threadpool(jobs_.ingest, path)
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(job.to_dict(), status_code=202)


@router.get("/v1/ingest/{ident}")
async def job(ident: int, request: Request) -> dict[str, Any]:
    found = _state(request).jobs.get(ident)
    if found is None:
        raise HTTPException(404, f"no job {ident} (the server keeps the last ones of its run)")
    return found.to_dict()


@router.post("/v1/sync", status_code=202)
async def sync(request: Request) -> JSONResponse:
    """Ingest again every folder the index holds files from: new, changed and gone files."""
    return JSONResponse(_writable(request).sync().to_dict(), status_code=202)


@router.post("/v1/remove", status_code=202)
async def remove(body: RemoveRequest, request: Request) -> JSONResponse:
    """Take a file out of the index (the file on disk is left alone)."""
    return JSONResponse(_writable(request).remove(body.source).to_dict(), status_code=202)
