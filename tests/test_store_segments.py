"""Delta segments (rag/stores/faiss_segments.py): commits that add, update, move and remove
files write only their delta, and the index they leave reads exactly like one rebuilt
from scratch; compaction folds the deltas back into one base."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from fakes import HashEmbedder, settings
from rag.index import Index
from rag.ingestion import ingest
from rag.stores import faiss_segments
from rag.stores.faiss import FaissStore as Store

WORDS = "river mountain harbor lantern copper meadow glacier orchard violin canyon falcon ember marble".split()
QUERIES = ["river mountain", "copper violin falcon", "glacier orchard harbor", "ember marble lantern"]


def _text(name: str, version: int) -> str:
    rng = random.Random(f"{name}@{version}")
    return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(3))


@pytest.fixture
def segmented(monkeypatch):
    """Deltas from the first commit on, compaction only when the deltas pass 10x the base."""
    monkeypatch.setattr(faiss_segments, "COMPACT_BELOW", 0)
    monkeypatch.setattr(faiss_segments, "DELTA_SHARE", 10.0)


def _state(index_dir: Path, tmp_path: Path) -> dict:
    s = settings(tmp_path, index_dir=str(index_dir))
    index = Index.open(settings=s, embedder=HashEmbedder())
    try:
        store = index.store
        rows = sorted(r[1:] for r in store._db.execute('SELECT id, source, page, heading, start, "end", text FROM chunks'))
        pages = sorted(store.pages(), key=lambda p: (p.source, p.offset))
        # sorted: chunk ids differ between the two indexes, and so does the order of ties
        dense = [sorted((round(h.score, 5), h.source, h.start) for h in index.search(q, k=50)) for q in QUERIES]
        lexical = [sorted((round(sc, 4), store.hits([(cid, sc)])[0].text) for cid, sc in store.lexical_search(q, 50))
                   for q in QUERIES]
        exported = sorted((c.source, c.start, c.text) for _, batch, _ in store.export() for c in batch)
        return {"rows": rows, "pages": [(p.source, p.text) for p in pages], "dense": dense,
                "lexical": [[t for _, t in sorted(lx)] for lx in lexical], "export": exported,
                "files": sorted(store.files()), "size": store.size}
    finally:
        index.close()


def _steps(docs: Path):
    """Five versions of a folder: adds, an update, a move, a removal."""
    docs.mkdir()
    for i in range(6):
        (docs / f"f{i}.txt").write_text(_text(f"f{i}", 1))
    yield "first"
    (docs / "g0.txt").write_text(_text("g0", 1))
    yield "add one"
    (docs / "f1.txt").write_text(_text("f1", 2))
    yield "update one"
    (docs / "f2.txt").rename(docs / "moved.txt")
    yield "move one"
    (docs / "f3.txt").unlink()
    (docs / "g1.txt").write_text(_text("g1", 1))
    yield "remove one, add one"


def test_every_commit_reads_like_a_rebuild(tmp_path, segmented):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    s = settings(tmp_path, index_dir=str(index_dir))
    for n, step in enumerate(_steps(docs)):
        ingest([docs], settings=s, embedder=HashEmbedder())
        store = Store.open(index_dir)
        segments = [seg.name for seg in faiss_segments.deltas(store.manifest.backend)]
        store.close()
        if n:
            assert segments, f"{step}: the commit compacted instead of writing a delta"
        ref = tmp_path / f"ref{n}"
        ingest([docs], settings=settings(tmp_path, index_dir=str(ref)), embedder=HashEmbedder())
        got, want = _state(index_dir, tmp_path), _state(ref, tmp_path)
        assert got["rows"] == want["rows"] and got["pages"] == want["pages"], step
        assert got["dense"] == want["dense"], step
        assert got["export"] == want["export"] and got["files"] == want["files"], step
        assert got["size"] == want["size"], step
        # Lexical rankings agree on what they find (BM25 statistics differ slightly across segments).
        for g, w in zip(got["lexical"], want["lexical"]):
            assert sorted(g) == sorted(w), step
        assert len(list(index_dir.glob("gen-*"))) == 1


def test_a_delta_commit_writes_only_its_own_files(tmp_path, segmented):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    s = settings(tmp_path, index_dir=str(index_dir))
    steps = _steps(docs)
    next(steps)
    ingest([docs], settings=s, embedder=HashEmbedder())
    base = {p.name: p.stat().st_ino for p in next(index_dir.glob("gen-*")).iterdir()}
    next(steps)
    ingest([docs], settings=s, embedder=HashEmbedder())
    gen = next(index_dir.glob("gen-*"))
    now = {p.name: p.stat().st_ino for p in gen.iterdir()}
    assert now["chunks.sqlite"] == base["chunks.sqlite"] and now["vectors.faiss"] == base["vectors.faiss"]
    new_files = {n for n in now if now[n] != base.get(n)}
    assert new_files == {"manifest.json", f"seg-{gen.name[4:]}.sqlite", f"seg-{gen.name[4:]}.faiss"}


def test_compaction_folds_the_deltas_into_one_base(tmp_path, monkeypatch):
    monkeypatch.setattr(faiss_segments, "COMPACT_BELOW", 0)
    monkeypatch.setattr(faiss_segments, "DELTA_SHARE", 0.3)  # one changed file of seven is under, two are over
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    s = settings(tmp_path, index_dir=str(index_dir))
    counts = []
    for _ in _steps(docs):
        ingest([docs], settings=s, embedder=HashEmbedder())
        store = Store.open(index_dir)
        counts.append(len(faiss_segments.deltas(store.manifest.backend)))
        if not counts[-1]:
            assert sorted(os.listdir(store.gen_dir)) == ["chunks.sqlite", "manifest.json", "vectors.faiss"]
        store.close()
    assert counts[1] == 1 and 0 in counts[2:], counts  # a delta, then a compaction
    ref = tmp_path / "ref"
    ingest([docs], settings=settings(tmp_path, index_dir=str(ref)), embedder=HashEmbedder())
    got, want = _state(index_dir, tmp_path), _state(ref, tmp_path)
    assert got["rows"] == want["rows"] and got["dense"] == want["dense"]
