"""What the Ray workers run for `--engine ray` (rag/engines/ray.py builds the pipeline).

A row of the pipeline is one planned file: `n` (its place in the plan), `source`, and
either `path` (the workers see the driver's files) or `data` (its bytes, shipped through
Ray's object store). `load_file` (a Ray Data task) runs the driver's own load-and-chunk
function (rag.ingestion.page_chunks, passed by reference as rag/prefetch.py does) and
replaces the row with `blob`: the pickled `Loaded`. `EmbedFiles` (a Ray Data actor: the
embedder is loaded once per actor) embeds every chunk of a batch of files and puts the
file's vectors into its blob. Pickle is only the wire format between Ray processes of one
ingest (Ray pickles everything it moves); nothing here is persisted.

Shipped bytes are written to a private temporary file with the file's own name, so the
loaders pick the same reader by suffix and every message still names the source.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..errors import LoaderError, RagError, unexpected_reason
from ..prefetch import Loaded, LoadFn
from ..types import Chunk, Page

if TYPE_CHECKING:
    from ..config import Settings
    from ..embedders import Embedder


@dataclass(frozen=True)
class LoadJob:
    """What every load task needs besides its file."""

    load: LoadFn
    passwords: tuple[str, ...]
    time_limit: float | None
    limit: int
    overlap: int
    tokenizer_file: str | None  # count tokens with this file (tokenizers, no model) ...
    counter: Any = None  # ... or with this embedder's count_tokens, when it has no tokenizer file
    model: str | None = None  # the embed_model setting, when the tokenizer is that model's (found on each node)
    packaged: bool = False


@dataclass(frozen=True)
class EmbedJob:
    """How an actor gets its embedder: the packaged adapters are made again from the
    settings (an ONNX session does not pickle); any other embedder (a library caller's,
    a test's) travels as it is."""

    settings: "Settings"
    given: Any = None
    batch_size: int = 8
    milvus: Any = None  # a ray_milvus.MilvusJob: the actors write the rows themselves
    name: str = ""  # the driver's embedder's name: the actor's must be the same

    def make(self) -> "Embedder":
        if self.given is not None:
            return self.given
        from ..config import default_cache_dir
        from ..embedders import make_embedder

        settings = replace(self.settings, threads=1)  # one actor per CPU
        try:  # the driver's cache folder (the ONNX export), else this node's own
            settings.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            settings = replace(settings, cache_dir=default_cache_dir())
        embedder = make_embedder(settings)
        if self.name and embedder.name != self.name:
            raise RagError(f"a Ray worker loaded the embedder {embedder.name}, the driver {self.name}: "
                           "pass the model with --embed-model, at the same path on every node")
        return embedder


_counters: dict[str, Callable[[Sequence[str]], list[int]]] = {}


def _count_fn(job: LoadJob) -> Callable[[Sequence[str]], list[int]]:
    if job.tokenizer_file is None:
        return job.counter.count_tokens
    path = job.tokenizer_file
    if job.packaged:  # the model directory as this node has it (the packaged one sits in its own site-packages)
        from ..embedders import resolve_embed_model

        path = str(resolve_embed_model(job.model)[1] / Path(job.tokenizer_file).name)
    count = _counters.get(path)
    if count is None:  # once per worker process
        from ..embedders import count_tokens_with, counting_tokenizer

        tokenizer = counting_tokenizer(Path(path))
        count = _counters[path] = lambda texts: count_tokens_with(tokenizer, texts)
    return count


def load_file(row: dict[str, Any], job: LoadJob) -> dict[str, Any]:
    """A Ray Data row function: one file in, its `Loaded` (pickled) out."""
    source = str(row["source"])
    data = row.get("data")
    if row.get("error"):
        loaded = Loaded((), (), (), str(row["error"]))
    elif data is None:
        loaded = _load(Path(str(row["path"])), source, job)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-ray-") as tmp:
            copy = Path(tmp) / Path(source).name
            copy.write_bytes(bytes(data))
            loaded = _load(copy, source, job)
    return {"n": int(row["n"]), "source": source,
            "blob": pickle.dumps((loaded, None), protocol=pickle.HIGHEST_PROTOCOL)}


def _load(path: Path, source: str, job: LoadJob) -> Loaded:
    notes: list[str] = []
    pages: list[Page] = []
    chunks: list[tuple[Chunk, ...]] = []
    count = _count_fn(job)
    try:
        for page, page_chunks in job.load(path, source, notes, job.passwords, job.time_limit, count, job.limit,
                                          job.overlap):
            pages.append(page)
            chunks.append(tuple(page_chunks))
    except LoaderError as exc:
        return Loaded((), (), tuple(notes), exc.reason)
    except Exception as exc:  # noqa: BLE001 - in a worker: still only this file's failure
        return Loaded((), (), tuple(notes), unexpected_reason(exc, "file"))
    return Loaded(tuple(pages), tuple(chunks), tuple(notes))


def embed_files(job: EmbedJob) -> type["EmbedFiles"]:
    """The actor class for one pipeline: the job rides in the class, which Ray pickles by
    value, rather than as constructor arguments, which Ray keeps in the object store and a
    restarted actor may no longer find there."""
    return type("EmbedFiles", (EmbedFiles,), {"job": job})


class EmbedFiles:
    """A Ray Data actor: loads the embedder once, then embeds batches of loaded files."""

    job: EmbedJob

    def __init__(self) -> None:
        self.embedder = self.job.make()
        self.batch_size = self.job.batch_size
        self.dim = self.embedder.dim
        self.rows: Any = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        files = [pickle.loads(blob)[0] for blob in batch["blob"]]
        texts = [c.embed_text() for loaded in files for page in loaded.chunks for c in page]
        vectors = self.vectors(texts)
        if self.job.milvus is not None:  # the rows go straight to Milvus; the driver gets no vectors
            if self.rows is None:
                from .ray_milvus import RowWriter

                self.rows = RowWriter(self.job.milvus)
            self.rows.write([str(s) for s in batch["source"]], files, vectors)
        out, at = [], 0
        for loaded in files:
            n = sum(len(page) for page in loaded.chunks)
            mine = None if self.job.milvus is not None else vectors[at:at + n]
            out.append(pickle.dumps((loaded, mine), protocol=pickle.HIGHEST_PROTOCOL))
            at += n
        return {"n": list(batch["n"]), "blob": out}

    def vectors(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.embedder.embed(texts, self.batch_size), dtype=np.float32)


def probe(paths: Sequence[tuple[str, int]]) -> bool:
    """Run on each node: does this machine see these files, with these sizes?"""
    import os

    try:
        return all(os.path.getsize(path) == size for path, size in paths)
    except OSError:
        return False
