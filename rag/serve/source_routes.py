"""The endpoints that show a quote where it stands: the stored page text around it, the
PDF page rendered with the quote's characters boxed, and the original file.

Only the stored text is read for the text view. The PDF view and the original file
read the file on disk, and only when it lies under the folder it was ingested from
(a file ingested by itself has no such folder and is not served) and still has the
content that was ingested (its SHA-256), so offsets never point into another text.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from ..identity import on_disk
from ..manifest import FileRecord
from ..types import file_type
from . import pdf_view
from .state import ServerState

router = APIRouter()
MAX_CONTEXT = 20_000  # characters of page text either side of a quote
_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> SHA-256: a PDF is hashed once
_hash_lock = threading.Lock()


def _state(request: Request) -> ServerState:
    return request.app.state.rag


def _record(request: Request, source: str) -> FileRecord:
    with _state(request).follower.lease() as index:
        record = index.store.files().get(source)
    if record is None:
        raise HTTPException(404, f"{source!r} is not in the index (see GET /v1/files)")
    return record


def _stored_text(request: Request, source: str, page: Optional[int]) -> str:
    with _state(request).follower.lease() as index:
        text = index.store.page_text(source, page)
    if text is None:
        raise HTTPException(404, f"no page {page if page is not None else '(none)'} of {source!r} in the index")
    return text


@router.get("/v1/page")
async def page_text(request: Request, source: str, page: Optional[int] = None, start: int = Query(0, ge=0),
                    end: int = Query(0, ge=0), context: int = Query(1500, ge=0, le=MAX_CONTEXT)) -> dict[str, Any]:
    """The stored text of a page around [start, end): `text` begins at `offset` of the page."""
    text = await run_in_threadpool(_stored_text, request, source, page)
    if end < start or end > len(text):
        raise HTTPException(422, f"start {start} and end {end} do not lie within the page's {len(text)} characters")
    lo, hi = max(0, start - context), min(len(text), end + context)
    return {"source": source, "page": page, "offset": lo, "text": text[lo:hi], "length": len(text),
            "start": start, "end": end, "type": file_type(source)}


def original_path(source: str, record: FileRecord, check_hash: bool = False) -> Path:
    """The file an entry was read from, if the server may serve it.

    Raises:
        HTTPException: 403 outside its ingested folder, 404 gone, 409 changed since ingest.
    """
    if not record.root:
        raise HTTPException(403, f"{source} was ingested as a file, not from a folder: the server serves "
                                 "originals only from the folders it ingested")
    root = Path(record.root).resolve()
    path = on_disk(source, record).resolve()
    if root not in path.parents:
        raise HTTPException(403, f"{source} is not under the folder it was ingested from ({root})")
    if not path.is_file():
        raise HTTPException(404, f"{source}: the file is no longer at {path}")
    if check_hash and _sha256(path) != record.sha256:
        raise HTTPException(409, f"{source} changed on disk since it was ingested: re-sync it to see its pages")
    return path


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        known = _hashes.get(key)
    if known is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        known = digest.hexdigest()
        with _hash_lock:
            _hashes[key] = known
    return known


@router.get("/v1/original")
async def original(request: Request, source: str) -> Response:
    """The original file, to open or download. Served with a sandboxing CSP and as a
    download unless it is a PDF or plain text: a document's HTML must never run as this
    origin's page."""
    record = await run_in_threadpool(_record, request, source)
    path = await run_in_threadpool(original_path, source, record)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    inline = kind in ("application/pdf", "text/plain")
    headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=kind, headers=headers, filename=path.name,
                        content_disposition_type="inline" if inline else "attachment")


def _pdf(request: Request, source: str) -> Path:
    if file_type(source) != "pdf":
        raise HTTPException(422, f"{source} is not a PDF: use GET /v1/page for its text")
    return original_path(source, _record(request, source), check_hash=True)


@router.get("/v1/pdf/render")
async def pdf_render(request: Request, source: str, page: int = Query(ge=1),
                     scale: float = Query(2.0, ge=0.5, le=4.0)) -> Response:
    """A PDF page as a PNG at `scale` pixels per point."""
    path = await run_in_threadpool(_pdf, request, source)
    png = await run_in_threadpool(pdf_view.render_png, path, page, scale)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.get("/v1/pdf/boxes")
async def pdf_boxes(request: Request, source: str, page: int = Query(ge=1), start: int = Query(ge=0),
                    end: int = Query(ge=0), span_start: Optional[int] = Query(None, ge=0),
                    span_end: Optional[int] = Query(None, ge=0),
                    scale: float = Query(2.0, ge=0.5, le=4.0)) -> dict[str, Any]:
    """The pixel boxes (in the image GET /v1/pdf/render gives at the same scale) of the
    stored text's [start, end) and, if given, of [span_start, span_end)."""
    path = await run_in_threadpool(_pdf, request, source)
    text = await run_in_threadpool(_stored_text, request, source, page)
    spans = [(start, end)] + ([(span_start, span_end)] if span_start is not None and span_end is not None else [])
    for lo, hi in spans:
        if hi < lo or hi > len(text):
            raise HTTPException(422, f"span {lo}-{hi} does not lie within the page's {len(text)} characters")
    result = await run_in_threadpool(pdf_view.quote_boxes, path, page, text, spans, scale)
    return {"source": source, "page": page, **result}
