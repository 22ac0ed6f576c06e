"""Path -> pages of text, by the file's suffix: one module per family of formats.

`FAMILIES` is the registry: each family names the suffixes it reads (and the page kind
each gets) and the function that reads them. A new format is one module with a `read`
function and a `KINDS` table, plus one line in FAMILIES.

A loader raises `LoaderError(source, reason)` for a file it cannot read at all; pages
it can read come back even when others fail (reported as notes). A family marked
`timed` is parsed whole under a per-file time limit, so a hostile file cannot hang an
ingest; the others yield their pages as they go.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Protocol

from ..errors import LoaderError, unexpected_reason
from ..types import Page
from . import epub, html, images, office, opendoc, pdf, sheets, text
from .html import html_to_text
from .text import (REPAIRED_NOTE, SEGMENT_BYTES, STREAM_BYTES, decode_text, has_real_suffix, is_text_name,
                   read_error_reason, sniffs_as_text)

__all__ = [
    "DEFAULT_TIME_LIMIT", "FAMILIES", "Family", "REPAIRED_NOTE", "Reader", "SEGMENT_BYTES", "STREAM_BYTES",
    "SUPPORTED_SUFFIXES", "decode_text", "html_to_text", "is_supported", "iter_pages", "load",
    "read_error_reason", "skip_reason",
]

DEFAULT_TIME_LIMIT = 120.0  # seconds to parse one file of a timed family


class Reader(Protocol):
    """What a family's `read` does: yield the file's pages with text, notes on the side."""

    def __call__(
        self, path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str]
    ) -> Iterable[Page]: ...


@dataclass(frozen=True)
class Family:
    name: str  # as messages name it ("PDF parsing took longer ...")
    kinds: Mapping[str, str]  # lowercased suffix -> Page.kind
    read: Reader
    timed: bool = False  # parsed whole under the per-file time limit
    ocr: bool = False  # `read` also takes the OCR mode (ocr="auto"|"always"|"never")


FAMILIES = (
    Family("text", text.KINDS, text.read),
    Family("HTML", html.KINDS, html.read),
    Family("PDF", pdf.KINDS, pdf.read, timed=True, ocr=True),
    Family("image", images.KINDS, images.read, ocr=True),  # page by page: OCR is slow but bounded
    Family("Office", office.KINDS, office.read, timed=True),
    Family("OpenDocument", opendoc.KINDS, opendoc.read, timed=True),
    Family("spreadsheet", sheets.KINDS, sheets.read),  # streamed: bounded memory, row caps
    Family("EPUB", epub.KINDS, epub.read, timed=True),
)
_BY_SUFFIX = {suffix: family for family in FAMILIES for suffix in family.kinds}
_TEXT = FAMILIES[0]
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)


def is_supported(path: Path) -> bool:
    """Whether a loader reads the file: by its suffix, or, for a name without one (LICENSE,
    Apache-2.0, METADATA), by its content being text (this reads its first bytes)."""
    return _family_of(path) is not None


def skip_reason(path: Path) -> str:
    """Why `is_supported` said no."""
    if has_real_suffix(path.name):
        return f"unsupported file type {path.suffix.lower()}"
    return "no file type (no suffix) and not plain text"


def _family_of(path: Path) -> tuple[Family, str] | None:
    """The family that reads a file and the kind of its pages."""
    if has_real_suffix(path.name):
        family = _BY_SUFFIX.get(path.suffix.lower())
        if family is not None:
            return family, family.kinds[path.suffix.lower()]
        if not is_text_name(path.name):
            return None
    if sniffs_as_text(path):
        return _TEXT, "text"
    return None


def load(
    path: Path, source: str, passwords: Iterable[str] = (), time_limit: float | None = DEFAULT_TIME_LIMIT,
    ocr: str = "auto",
) -> tuple[list[Page], list[str]]:
    """Read one whole file into pages (see iter_pages); returns the pages and the notes."""
    notes: list[str] = []
    pages = list(iter_pages(path, source, notes, passwords, time_limit, ocr=ocr))
    return pages, notes


def _guarded(read: Callable[[], Iterable[Page]], source: str, family: "Family") -> Iterator[Page]:
    """A family's pages, with anything unexpected its parser raises (a library's own
    exception on a malformed file) turned into that file's failure: one bad file must
    not stop the rest of the folder. `read` is called in here, not by the caller: a
    family whose `read` is a plain function (PDF) raises while being called, and that
    must be caught too."""
    try:
        yield from read()
    except (LoaderError, _TimeUp):
        raise
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on hostile input
        raise LoaderError(source, unexpected_reason(exc, family.name)) from None


def iter_pages(
    path: Path,
    source: str,
    notes: list[str],
    passwords: Iterable[str] = (),
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    ocr: str = "auto",
) -> Iterator[Page]:
    """Yield the pages (or segments) of one file that have text.

    Args:
        path: the file on disk.
        source: the name recorded for it in the index (relative path).
        notes: receives warnings about parts that were skipped or repaired.
        passwords: tried in order on encrypted PDFs after the empty password.
        time_limit: seconds a timed family (PDF) may take to parse (None: no limit).
        ocr: "auto" recognises the text of images and of PDF pages without a text layer,
            "always" also of PDF pages with one, "never" of nothing (rag/loaders/ocr.py).

    Raises:
        LoaderError: the file has no usable text at all (possibly after some pages
            were yielded, for a large text file that fails part-way).
    """
    found = _family_of(path)
    if found is None:
        raise LoaderError(source, skip_reason(path))
    family, kind = found
    options = {"ocr": ocr} if family.ocr else {}
    if not family.timed:
        yield from _guarded(lambda: family.read(path, source, kind, notes, tuple(passwords), **options), source, family)
        return
    found: list[str] = []  # kept only if the parse finishes in time
    try:
        with _time_limit(time_limit):
            pages = list(_guarded(lambda: family.read(path, source, kind, found, tuple(passwords), **options),
                                  source, family))
    except _TimeUp:
        raise LoaderError(source, f"{family.name} parsing took longer than {time_limit:g} s and was stopped") from None
    notes.extend(found)
    yield from pages


class _TimeUp(BaseException):
    """BaseException, so a parser's own `except Exception` cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM: only in the main thread on Unix;
    elsewhere the block runs unlimited). The timed parsers are pure Python (pypdf), so
    the signal lands between bytecodes."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
