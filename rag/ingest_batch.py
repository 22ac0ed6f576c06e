"""The ingest's batcher: chunks collected across files, embedded in large batches and
written to the store, each file recorded as finished once all its chunks are stored."""

from __future__ import annotations

from typing import Callable, Sequence

from .config import Settings
from .embedders import Embedder
from .manifest import FileRecord
from .stores import Writer
from .types import Chunk, Page, Progress

ProgressFn = Callable[[Progress], None]


class Batcher:
    """Collects chunks across files and embeds them in large batches; a file is recorded
    as finished only once all of its chunks are stored. Memory holds at most one batch."""

    def __init__(self, writer: Writer, embedder: Embedder, settings: Settings, progress: ProgressFn | None):
        self.writer, self.embedder, self.settings, self.progress = writer, embedder, settings, progress
        self.size = settings.batch_size * 8  # chunks per flush to the store
        self.chunks: list[Chunk] = []
        self.pages: list[Page] = []
        self.finished: list[tuple[str, FileRecord]] = []
        self.embedded = 0
        self.produced = 0  # chunks made so far: the embed bar's moving total

    def add(self, page: Page, chunks: Sequence[Chunk]) -> None:
        self.pages.append(page)
        self.chunks.extend(chunks)
        self.produced += len(chunks)
        if len(self.chunks) >= self.size:
            self.flush()

    def finish(self, source: str, record: FileRecord) -> None:
        self.finished.append((source, record))

    def drop(self, source: str) -> None:
        """Forget a failed file's chunks, buffered or already stored."""
        kept = [c for c in self.chunks if c.source != source]
        self.produced -= len(self.chunks) - len(kept)
        self.chunks = kept
        self.pages = [p for p in self.pages if p.source != source]
        self.writer.discard_file(source)

    def flush(self) -> None:
        done = self.embedded

        def step(n: int) -> None:
            nonlocal done
            done += n
            if self.progress:
                self.progress(Progress("embed", done, self.produced))

        texts = [c.embed_text() for c in self.chunks]
        vectors = self.embedder.embed(texts, self.settings.batch_size, step)
        self.writer.add_chunks(self.chunks, vectors)
        self.writer.add_pages(self.pages)
        for source, record in self.finished:
            self.writer.finish_file(source, record)
        self.embedded += len(self.chunks)
        self.chunks, self.pages, self.finished = [], [], []
