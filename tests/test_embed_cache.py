"""The content-hash embedding cache: text seen before is not embedded again, across
re-ingests, rebuilds and indexes, with the same vectors; a broken cache file only slows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes import HashEmbedder

from rag import Settings, ingest
from rag.embedders.cache import CachedEmbedder, cache_file
from rag.stores.faiss import FaissStore

PARAS = [f"Paragraph {i} talks about topic number {i} and nothing else at all." for i in range(40)]


def write(folder: Path, paras: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "notes.md").write_text("\n\n".join(paras) + "\n")


def test_a_rebuild_and_an_edit_embed_only_new_text(tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, PARAS)
    embedder = HashEmbedder(name="test/cache-a")
    settings = Settings.load({"index_dir": tmp_path / "idx", "chunk_tokens": 24, "chunk_overlap": 0, "embed_cache": True})
    first = ingest([docs], settings=settings, embedder=embedder)
    assert first.chunks_embedded > 5 and first.chunks_from_cache == 0
    assert len(embedder.embedded) == first.chunks_embedded

    embedder.embedded.clear()
    again = ingest([docs], settings=settings, embedder=embedder, rebuild=True)
    assert again.chunks_embedded == first.chunks_embedded == again.chunks_from_cache
    assert embedder.embedded == []

    write(docs, PARAS + ["A new closing paragraph about something else entirely, added later."])
    edited = ingest([docs], settings=settings, embedder=embedder)
    assert edited.updated == ("notes.md",)
    assert 0 < len(embedder.embedded) < edited.chunks_embedded  # only the changed chunks
    assert edited.chunks_from_cache == edited.chunks_embedded - len(embedder.embedded)

    # the vectors stored are the embedder's own, wherever they came from
    store = FaissStore.open(tmp_path / "idx")
    try:
        rows = store.chunk_rows(list(range(1, 1000)))
        ids = sorted(rows)
        texts = [f"{rows[i][2]}\n{rows[i][5]}" if rows[i][2] else rows[i][5] for i in ids]
        assert np.allclose(store.vectors_of(ids), HashEmbedder().embed(texts), atol=1e-6)
    finally:
        store.close()


def test_the_cache_can_be_turned_off(tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, PARAS[:5])
    embedder = HashEmbedder(name="test/cache-b")
    settings = Settings.load({"index_dir": tmp_path / "idx", "embed_cache": False})
    ingest([docs], settings=settings, embedder=embedder)
    embedder.embedded.clear()
    report = ingest([docs], settings=settings, embedder=embedder, rebuild=True)
    assert report.chunks_from_cache == 0 and len(embedder.embedded) == report.chunks_embedded


def test_a_corrupt_cache_file_is_ignored_with_a_warning(tmp_path: Path, caplog):
    inner = HashEmbedder(name="test/cache-c")
    path = cache_file(tmp_path, inner)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    cached = CachedEmbedder(inner, path)
    out = cached.embed(["one text", "another text"])
    assert np.allclose(out, HashEmbedder().embed(["one text", "another text"]))
    assert "not usable" in caplog.text
    cached.close()


def test_duplicates_in_one_batch_and_a_mixed_batch(tmp_path: Path):
    inner = HashEmbedder(name="test/cache-d")
    cached = CachedEmbedder(inner, cache_file(tmp_path, inner))
    first = cached.embed(["alpha beta", "gamma delta"])
    inner.embedded.clear()
    mixed = cached.embed(["gamma delta", "epsilon", "alpha beta", "epsilon"])
    assert inner.embedded == ["epsilon", "epsilon"]  # only the unseen text reached the model
    assert np.allclose(mixed[0], first[1]) and np.allclose(mixed[2], first[0]) and np.allclose(mixed[1], mixed[3])
    cached.close()
