"""What an index holds (`rag list`) and taking files out of it (`rag remove`), without
loading any model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import RagError
from .identity import on_disk
from .config import Settings
from .manifest import FileRecord
from .stores import Backend, Store, backend_for, transaction


@dataclass(frozen=True)
class Listing:
    index_dir: str
    files: dict[str, FileRecord]
    embedder: str
    dim: int
    chunks: int
    bytes_on_disk: int
    last_ingest: str | None
    chunking: dict[str, Any]
    store: str = "faiss"

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [
                {"path": p, "chunks": r.chunks, "pages": r.pages, "sha256": r.sha256, "ingested_at": r.ingested_at,
                 "bytes": r.bytes, "root": r.root, "relative": r.identity(p)[1]}
                for p, r in sorted(self.files.items())
            ],
            "embedder": self.embedder,
            "dim": self.dim,
            "chunks": self.chunks,
            "bytes_on_disk": self.bytes_on_disk,
            "last_ingest": self.last_ingest,
            "chunking": self.chunking,
            "index_dir": self.index_dir,
            "store": self.store,
        }


def _backend(where: Settings | str | Path) -> Backend:
    """The settings' backend; a bare path means a FAISS index directory."""
    if isinstance(where, Settings):
        return backend_for(where)
    return backend_for(Settings(index_dir=Path(where)), "faiss")


def list_index(where: Settings | str | Path) -> Listing:
    backend = _backend(where)
    store = backend.open()
    try:
        return listing(backend, store)
    finally:
        store.close()


def listing(backend: Backend, store: Store) -> Listing:
    """What `rag list` reports of a store already open (rag serve's leased one, say)."""
    m = store.manifest
    return Listing(
        index_dir=backend.location, files=store.files(), embedder=m.embedder.name,
        dim=m.embedder.dim, chunks=m.chunks, bytes_on_disk=backend.bytes_on_disk() or 0,
        last_ingest=m.last_ingest, chunking=asdict(m.chunking), store=backend.name,
    )


def _targets(spec: str, files: dict[str, FileRecord]) -> list[str]:
    """Index entries a user's path names: the recorded name itself, or a file or folder
    on disk (where each entry was read from)."""
    if spec in files:
        return [spec]
    wanted = Path(spec).expanduser().resolve()
    out = []
    for source, rec in files.items():
        path = on_disk(source, rec)
        if path == wanted or wanted in path.parents:
            out.append(source)
    return sorted(out)


def remove(paths: Iterable[str], where: Settings | str | Path) -> list[str]:
    """Take files (or every file under a folder) out of the index; returns their names.

    Raises:
        RagError: a path names nothing in the index (then nothing is removed).
    """
    backend = _backend(where)
    with transaction(backend) as tx:
        manifest = backend.read_manifest()
        files = dict(manifest.files)
        chosen: list[str] = []
        for spec in paths:
            hits = _targets(spec, files)
            if not hits:
                raise RagError(f"{spec} is not in the index at {backend.location} (see `rag list`)")
            chosen.extend(h for h in hits if h not in chosen)
        writer = tx.begin(manifest)
        for source in chosen:
            writer.remove_source(source)
        tx.commit()
    return chosen
