"""Scans and photos of text (PNG, JPEG, TIFF, BMP, WebP), read by OCR (rag/loaders/ocr.py).

Each frame that is a page is one Page with `page` = frame number and `ocr=True`: every
frame of a TIFF (a multi-page scan), only the first of an animated WebP or PNG (its
frames are moments of one picture, not pages; a note says the rest were not read). An
image in which nothing can be read stores nothing and is a warning, not a failure, so
a folder of photos does not fail an ingest. `--ocr never` leaves images unread: that is
a failure with its reason, so a later run with OCR on reads them.

Pillow refuses images over its decompression-bomb limit; MAX_PIXELS is lower still,
since a frame that large would only be scaled down to MAX_SIDE pixels anyway.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import LoaderError
from ..types import Page
from .pdf_text import join_hyphens
from .text import read_error_reason

KINDS = {
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
    ".bmp": "image", ".webp": "image",
}
MAX_PIXELS = 60_000_000  # a 600 dpi A3 scan is 49 megapixels
MAX_FRAMES = 2000  # pages of one TIFF; past this the file is more likely hostile than a book
_PAGED = {"TIFF"}  # formats whose frames are pages


def read(
    path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = (), ocr: str = "auto"
) -> Iterator[Page]:
    """The recognised text of each page of an image file (see the module docstring)."""
    if ocr == "never":
        raise LoaderError(source, "an image, and OCR is off (--ocr never)")
    from PIL import Image, UnidentifiedImageError

    from . import ocr as engine

    try:
        with warnings.catch_warnings():  # a large image is refused below, with its reason, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise LoaderError(source, "not an image Pillow can read (damaged or mislabelled?)") from None
        raise LoaderError(source, read_error_reason(exc)) from None
    except Image.DecompressionBombError:
        raise LoaderError(source, "image too large to read (a decompression bomb?)") from None
    with image:
        empty: list[int] = []
        found = False
        for number, frame in _frames(image, source, notes):
            text = join_hyphens(engine.recognise(frame).text)
            if text.strip():
                found = True
                yield Page(source=source, page=number, text=text, kind=kind, ocr=True)
            else:
                empty.append(number)
    if not found:
        notes.append("no text found in the image (OCR): nothing stored")
    elif empty:
        notes.append(f"no text found on page(s) {', '.join(map(str, empty))} (OCR)")


def _frames(image: object, source: str, notes: list[str]) -> Iterator[tuple[int, object]]:
    """(page number, frame) for each frame to read, each checked and fully decoded."""
    from PIL import Image, ImageOps

    total = getattr(image, "n_frames", 1)
    paged = image.format in _PAGED  # type: ignore[attr-defined]
    if total > 1 and not paged:
        notes.append(f"animated image: only the first of its {total} frames was read")
    count = min(total, MAX_FRAMES) if paged else 1
    if paged and total > MAX_FRAMES:
        notes.append(f"only the first {MAX_FRAMES} of {total} pages were read")
    for index in range(count):
        try:
            image.seek(index)  # type: ignore[attr-defined]
            width, height = image.size  # type: ignore[attr-defined]
            if width * height > MAX_PIXELS:
                raise LoaderError(source, f"image too large to read ({width} x {height} pixels)")
            image.load()  # type: ignore[attr-defined]
            # A phone's photo is often stored sideways with an EXIF note to turn it.
            frame = ImageOps.exif_transpose(image) if index == 0 else image.copy()  # type: ignore[attr-defined]
        except (OSError, EOFError, ValueError, Image.DecompressionBombError) as exc:
            # A truncated file, or a frame the decoder rejects: keep what was read before it.
            if index == 0:
                raise LoaderError(source, f"damaged image ({str(exc)[:160] or type(exc).__name__})") from None
            notes.append(f"page {index + 1}: unreadable ({str(exc)[:160] or type(exc).__name__})")
            continue
        yield index + 1, frame
