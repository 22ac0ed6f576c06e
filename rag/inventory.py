"""What an index holds (`rag list`) and taking files out of it (`rag remove`), without
loading any model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import store as store_mod
from .errors import RagError
from .store import FileRecord, Store, StoreWriter


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [
                {"path": p, "chunks": r.chunks, "pages": r.pages, "sha256": r.sha256, "ingested_at": r.ingested_at,
                 "bytes": r.bytes, "root": r.root}
                for p, r in sorted(self.files.items())
            ],
            "embedder": self.embedder,
            "dim": self.dim,
            "chunks": self.chunks,
            "bytes_on_disk": self.bytes_on_disk,
            "last_ingest": self.last_ingest,
            "chunking": self.chunking,
            "index_dir": self.index_dir,
        }


def list_index(index_dir: str | Path) -> Listing:
    store = Store.open(Path(index_dir))
    try:
        m = store.manifest
        return Listing(
            index_dir=str(index_dir), files=store.files(), embedder=m["embedder"]["name"], dim=int(m["embedder"]["dim"]),
            chunks=int(m["chunks"]), bytes_on_disk=store_mod.bytes_on_disk(Path(index_dir)),
            last_ingest=m.get("last_ingest"), chunking=m["chunking"],
        )
    finally:
        store.close()


def _targets(spec: str, files: dict[str, FileRecord]) -> list[str]:
    """Index entries a user's path names: the recorded name itself, or a file or folder
    on disk (resolved against the folder each entry was ingested from)."""
    if spec in files:
        return [spec]
    wanted = Path(spec).expanduser().resolve()
    out = []
    for source, rec in files.items():
        on_disk = Path(rec.root) / source if rec.root else Path(source)
        if on_disk == wanted or wanted in on_disk.parents:
            out.append(source)
    return sorted(out)


def remove(paths: Iterable[str], index_dir: str | Path) -> list[str]:
    """Take files (or every file under a folder) out of the index; returns their names.

    Raises:
        RagError: a path names nothing in the index (then nothing is removed).
    """
    index_dir = Path(index_dir)
    with store_mod.write_lock(index_dir):
        live = store_mod.live_generation(index_dir)
        manifest = store_mod.read_manifest(live)
        files = {k: FileRecord(**v) for k, v in manifest.get("files", {}).items()}
        chosen: list[str] = []
        for spec in paths:
            hits = _targets(spec, files)
            if not hits:
                raise RagError(f"{spec} is not in the index at {index_dir} (see `rag list`)")
            chosen.extend(h for h in hits if h not in chosen)
        writer = StoreWriter(index_dir, manifest)
        try:
            for source in chosen:
                writer.remove_source(source)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return chosen
