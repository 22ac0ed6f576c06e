"""The local engine (the default): files are loaded and chunked in this process, or ahead
of the embedder in `--workers` processes (rag/prefetch.py), and embedded here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..prefetch import Loaded, LoadFn, Prefetcher

if TYPE_CHECKING:
    from ..config import Settings
    from ..discover import Input
    from ..embedders import Embedder
    from ..stores import Writer


class LocalWork:
    def __init__(self, embedder: "Embedder", writer: "Writer", prefetcher: Prefetcher | None) -> None:
        self.embedder, self.writer, self.prefetcher = embedder, writer, prefetcher

    def results(self, items: Iterable[tuple[Path, str]]) -> Iterator[Loaded | None]:
        if self.prefetcher is not None:
            yield from self.prefetcher.results(items)
        else:
            for _ in items:
                yield None  # loaded in the driver, page by page

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


class LocalEngine:
    name = "local"

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings

    def work(self, todo: Sequence[tuple["Input", str]], embedder: "Embedder", writer: "Writer", limit: int,
             passwords: Sequence[str], load: LoadFn) -> LocalWork:
        settings = self.settings
        tokenizer_file = getattr(embedder, "tokenizer_file", None)
        prefetcher = None
        # Workers count tokens with the embedder's tokenizer file; an embedder without one loads in process.
        if settings.workers > 0 and tokenizer_file is not None and len(todo) > 1:
            prefetcher = Prefetcher(settings.workers, tokenizer_file, limit, settings.chunk_overlap, passwords,
                                    settings.file_timeout, load)
        return LocalWork(embedder, writer, prefetcher)

    def close(self) -> None:
        pass
