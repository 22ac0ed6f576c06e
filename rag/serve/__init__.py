"""`rag serve` and `rag mcp`: the index as a service for other programs.

    options.py      ServeOptions: address, token, limits, CORS; the rule for binding
    follower.py     the Index of the latest commit: models loaded once, stores swapped
    queue.py        the one generator behind a bounded FIFO queue (429 past it), cancellable
    schemas.py      request bodies and their validation, as FastAPI reads them
    openai_chat.py  OpenAI chat messages -> question and history; an Answer -> chat objects
    errors.py       every error as the OpenAI API shapes it: {"error": {"message", "type"}}
    state.py        what the endpoints share, and the Service hook for background tasks
    app.py          the FastAPI app: middleware (token, body size, CORS), lifespan, errors
    routes.py       the endpoints
    web.py          the web page at / (static files in web/, no build step; docs/web.md)
    source_routes.py  what the page shows a quote in: page text, PDF render and boxes, the original
    pdf_view.py     a PDF page rendered, and a quote's characters boxed on it (PDFium)
    library_routes.py, jobs.py  the page's writes: ingest with progress, re-sync, remove
    mcp.py          `rag mcp`: the same index as MCP tools and resources

fastapi, uvicorn and mcp come with the `serve` extra and are imported by the modules
that need them, never by this file, so `import rag.serve` and `rag --help` stay light.
"""

from __future__ import annotations

from .options import ServeOptions, is_loopback

__all__ = ["ServeOptions", "is_loopback"]
