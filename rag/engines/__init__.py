"""Where ingest's work on new and changed files runs: loading, chunking and embedding.

rag/ingestion.py plans (content hashes, the manifest) and commits (one store
transaction) whatever the engine; an engine only does the work in between. For each
planned file, in plan order, it hands the driver what loading gave (a `Loaded`: pages
with their chunks and notes, or the loader's failure reason; None: load it yourself),
the embedder the driver's batcher calls for those chunks, and the writer they go to.
The driver's loop, its failure handling, the report and the commit are the same for all.

    local.py      this process, with optional worker processes loading ahead (rag/prefetch.py)
    ray.py        a Ray cluster (`--engine ray`): connecting, how files reach the workers,
                  the Ray Data pipeline, the vectors coming back
    ray_work.py   what runs on the Ray workers: load-and-chunk tasks, embedder actors
    ray_milvus.py workers that write their rows straight to a Milvus server

Ray is imported only inside the ray modules' functions: `rag --help` and a local ingest
never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ..config import Settings
    from ..discover import Input
    from ..embedders import Embedder
    from ..prefetch import Loaded, LoadFn
    from ..stores import Writer

__all__ = ["Engine", "Work", "open_engine"]


class Work(Protocol):
    """One ingest's files as an engine works on them."""

    embedder: "Embedder"  # what the driver's batcher calls for the chunks' vectors
    writer: "Writer"  # where the driver's batcher stores them

    def results(self, items: Iterable[tuple[Path, str]]) -> Iterator["Loaded | None"]:
        """One result per (path, source), in order; None: the driver loads that file itself."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def work(self, todo: Sequence[tuple["Input", str]], embedder: "Embedder", writer: "Writer", limit: int,
             passwords: Sequence[str], load: "LoadFn") -> Work: ...

    def close(self) -> None: ...


def open_engine(settings: "Settings") -> Engine:
    """The engine the settings name, ready to work: for Ray, connected to the cluster.

    Raises:
        MissingDependencyError: `engine` is "ray" and Ray is not installed.
        RagError: the Ray cluster cannot be reached.
    """
    if settings.engine == "ray":
        from .ray import RayEngine

        return RayEngine.connect(settings)
    from .local import LocalEngine

    return LocalEngine(settings)
