"""The web page of `rag serve`: the static files under rag/serve/web/, served at `/`
and `/web/NAME`, open without the token (they hold no data; the page asks for the token
and sends it with every API call it makes).

Every response carries a Content-Security-Policy that lets the page run only its own
scripts and styles, so even a document's text that slipped into markup could not run
(the page never puts document text into markup: it writes it with textContent).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter()
FOLDER = Path(__file__).with_name("web")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
          "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def _file(name: str) -> Response:
    path = FOLDER / name
    if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        raise HTTPException(404, f"no file {name!r} in the web page")
    return Response(path.read_bytes(), media_type=TYPES[path.suffix], headers=HEADERS)


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return _file("index.html")


@router.get("/web/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    return _file(name)
