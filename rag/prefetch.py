"""Worker processes that load and chunk files ahead of the embedder (`ingest --workers`).

`Prefetcher.results(items)` yields one `Loaded` per file, in the order given, while up
to `2 x workers` files ahead are being loaded and chunked in `workers` processes; the
caller embeds and stores meanwhile, so parsing no longer waits for the embedder or the
other way round. Everything that writes stays in the caller: a killed ingest behaves as
before.

Workers run the caller's own load-and-chunk function (rag.ingestion.page_chunks, passed in
by reference) and count tokens with the embedder's own `tokenizer.json` (the tokenizers
library, no model), so their chunks are the ones the caller would have cut. Each parses in its
own main thread, so the PDF time limit (SIGALRM) still holds. A file larger than
IN_PROCESS_BYTES is not sent to a worker (its pages would all travel back at once):
the caller gets None for it and loads it itself, streamed page by page.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import LoaderError, unexpected_reason
from .embedders.base import count_tokens_with, counting_tokenizer
from .types import Chunk, Page

IN_PROCESS_BYTES = 20_000_000


@dataclass(frozen=True)
class Loaded:
    pages: tuple[Page, ...]
    chunks: tuple[tuple[Chunk, ...], ...]  # per page
    notes: tuple[str, ...]
    error: str | None = None  # the LoaderError's reason when the file could not be read

    def pairs(self, source: str) -> Iterator[tuple[Page, Sequence[Chunk]]]:
        """The pages with their chunks, as the load function yields them in process; raises
        the worker's LoaderError again, here."""
        if self.error is not None:
            raise LoaderError(source, self.error)
        yield from zip(self.pages, self.chunks)


# load(path, source, notes, passwords, time_limit, count, limit, overlap) -> (page, chunks) pairs
LoadFn = Callable[..., Iterator[tuple[Page, Sequence[Chunk]]]]

_counter: Any = None


def _start(tokenizer_file: str) -> None:
    global _counter
    _counter = counting_tokenizer(Path(tokenizer_file))


def _count(texts: Sequence[str]) -> list[int]:
    return count_tokens_with(_counter, texts)


def _load(load: LoadFn, path: str, source: str, passwords: tuple[str, ...], time_limit: float | None,
          limit: int, overlap: int) -> Loaded:
    notes: list[str] = []
    pages: list[Page] = []
    chunks: list[tuple[Chunk, ...]] = []
    try:
        for page, page_chunks_ in load(Path(path), source, notes, passwords, time_limit, _count, limit, overlap):
            pages.append(page)
            chunks.append(tuple(page_chunks_))
    except LoaderError as exc:
        return Loaded((), (), tuple(notes), exc.reason)
    except Exception as exc:  # noqa: BLE001 - in a worker: still only this file's failure
        return Loaded((), (), tuple(notes), unexpected_reason(exc, "file"))
    return Loaded(tuple(pages), tuple(chunks), tuple(notes))


class Prefetcher:
    def __init__(self, workers: int, tokenizer_file: Path, limit: int, overlap: int,
                 passwords: Sequence[str], time_limit: float | None, load: LoadFn) -> None:
        self.workers = workers
        self.load = load
        self.args = (tuple(passwords), time_limit, limit, overlap)
        self.pool = ProcessPoolExecutor(workers, initializer=_start, initargs=(str(tokenizer_file),))

    def results(self, items: Iterable[tuple[Path, str]]) -> Iterator[Loaded | None]:
        """One result per (path, source), in order; None: load it in the caller (too big,
        or the worker pool broke)."""
        pending: deque[Future | None] = deque()
        todo = iter(items)
        broken = False

        def submit() -> bool:
            nonlocal broken
            item = next(todo, None)
            if item is None:
                return False
            path, source = item
            if broken or _size(path) > IN_PROCESS_BYTES:
                pending.append(None)
                return True
            try:
                pending.append(self.pool.submit(_load, self.load, str(path), source, *self.args))
            except (BrokenProcessPool, RuntimeError):
                broken = True
                pending.append(None)
            return True

        while len(pending) < 2 * self.workers and submit():
            pass
        while pending:
            future = pending.popleft()
            submit()
            if future is None:
                yield None
                continue
            try:
                yield future.result()
            except BrokenProcessPool:
                broken = True  # a parser crashed its process: this and later files load in the caller
                yield None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
