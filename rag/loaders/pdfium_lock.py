"""One lock around every PDFium call of the process.

PDFium is not thread-safe, not even across documents: `rag serve` renders a page for the
web page in one request thread while another draws a quote's boxes, or while an ingest
started from the page renders scans for OCR, and two threads inside PDFium at once free
the same memory twice (seen as "double free or corruption" and the server gone). Work
that takes long outside PDFium (OCR of the rendered image) is done with the lock let go.
"""

from __future__ import annotations

import threading

PDFIUM = threading.RLock()
