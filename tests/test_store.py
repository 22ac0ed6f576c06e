"""The on-disk index: save/load round trip, manifest provenance, atomic generations, damage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakes import QUERIES, TEXTS, HashEmbedder, make_folder, settings
from rag.stores import faiss as store_mod
from rag.config import Settings
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import Index
from rag.ingestion import ingest
from rag.manifest import FORMAT_VERSION, Chunking, EmbedderInfo, FileRecord, Manifest, now_iso
from rag.stores.faiss import FaissStore as Store, FaissWriter
from rag.types import Chunk, Page

def search_all(index: Index) -> list[list[tuple[int, float, str]]]:
    return [[(h.chunk_id, h.score, h.source) for h in index.search(q, k=10)] for q in QUERIES]


@pytest.fixture
def built(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    return docs, s, report


def test_save_load_round_trip_gives_identical_results(built):
    _, s, report = built
    assert report.chunks > 3
    index = Index.open(settings=s, embedder=HashEmbedder())
    before = search_all(index)
    index.close()
    again = Index.open(settings=s, embedder=HashEmbedder())
    after = search_all(again)
    again.close()
    assert before == after
    assert all(before), "every query should find something"
    # Scores are cosine similarities of unit vectors, best first.
    for row in before:
        scores = [sc for _, sc, _ in row]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= sc <= 1.0001 for sc in scores)


def test_search_ranks_the_matching_chunk_first(built):
    _, s, _ = built
    index = Index.open(settings=s, embedder=HashEmbedder())
    hits = index.search("dogs fetch sticks in the park", k=3)
    assert hits[0].source == "dogs.txt"
    assert [h.rank for h in hits] == [1, 2, 3]
    top = index.search("Cats eat fish and chicken", k=1)[0]
    assert top.source == "cats.md" and top.heading == "Cats > Food"
    page = index.store.page_text("cats.md", None)
    assert page is not None and page[top.start : top.end] == top.text
    index.close()


def test_k_larger_than_index_returns_everything(built):
    _, s, report = built
    index = Index.open(settings=s, embedder=HashEmbedder())
    hits = index.search("anything at all", k=1000)
    assert len(hits) == report.chunks == index.store.size
    assert len({h.chunk_id for h in hits}) == len(hits)
    index.close()


def test_manifest_records_provenance(built, tmp_path):
    docs, s, _ = built
    store = Store.open(s.index_dir)
    m = store.manifest
    store.close()
    assert m.format_version == FORMAT_VERSION
    assert m.embedder.name == "test/hash-embedder"
    assert m.embedder.dim == 64
    assert m.chunking.chunk_tokens == 32 and m.chunking.chunk_overlap == 4
    assert m.chunking.algorithm
    assert set(m.files) == set(TEXTS)
    import hashlib

    for name, rec in m.files.items():
        assert rec.sha256 == hashlib.sha256((docs / name).read_bytes()).hexdigest()
        assert rec.chunks >= 1 and rec.bytes == (docs / name).stat().st_size
    assert m.chunks == sum(r.chunks for r in m.files.values())
    # The manifest is plain JSON on disk, in the shape Manifest reads and writes.
    live = (s.index_dir / store_mod.CURRENT).read_text().strip()
    on_disk = json.loads((s.index_dir / live / store_mod.MANIFEST).read_text())
    assert on_disk["format"] == "rag-index" and on_disk["embedder"]["name"] == "test/hash-embedder"
    assert Manifest.from_json(on_disk, "x") == m
    assert Manifest.from_json(m.to_json(), "x") == m and m.to_json() == on_disk


def test_open_missing_dir_raises_not_found(tmp_path):
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        Store.open(tmp_path / "nowhere")
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "nowhere", embedder=HashEmbedder())


def _live(index_dir: Path) -> Path:
    return index_dir / (index_dir / store_mod.CURRENT).read_text().strip()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "delete"])
def test_damaged_vectors_raise_corrupt(built, damage):
    _, s, _ = built
    path = _live(s.index_dir) / store_mod.VECTORS
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        Store.open(s.index_dir)
    with pytest.raises(IndexCorruptError):
        Index.open(settings=s, embedder=HashEmbedder())


def test_damaged_manifest_and_current_raise_corrupt(built):
    _, s, _ = built
    gen = _live(s.index_dir)
    manifest = gen / store_mod.MANIFEST
    good = manifest.read_text()
    manifest.write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest.json"):
        Store.open(s.index_dir)
    data = json.loads(good)
    data["format_version"] = FORMAT_VERSION + 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="format version"):
        Store.open(s.index_dir)
    data = json.loads(good)
    data["chunks"] += 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        Store.open(s.index_dir)
    manifest.write_text(good)
    Store.open(s.index_dir).close()
    (s.index_dir / store_mod.CURRENT).write_text("../../etc\n")
    with pytest.raises(IndexCorruptError):
        Store.open(s.index_dir)
    (s.index_dir / store_mod.CURRENT).write_text("gen-999999\n")
    with pytest.raises(IndexCorruptError):
        Store.open(s.index_dir)


def test_damaged_chunk_db_raises_corrupt(built):
    _, s, _ = built
    db = _live(s.index_dir) / store_mod.CHUNKS_DB
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexCorruptError):
        Store.open(s.index_dir)


def _manifest(dim: int = 64) -> Manifest:
    return Manifest(EmbedderInfo("test/hash-embedder", dim, 254), Chunking("x", 32, 4))


def _add(writer: FaissWriter, source: str, text: str) -> None:
    page = Page(source, None, text, "text")
    chunk = Chunk(source, None, "", 0, len(text), text, len(text.split()))
    rec = FileRecord("0" * 64, 1, 1, len(text), "", now_iso())
    writer.add_file(rec, source, [page], [chunk], HashEmbedder().embed([text]))


def test_writer_is_invisible_until_commit_and_abort_keeps_live(tmp_path):
    index_dir = tmp_path / "idx"
    w = FaissWriter(index_dir, _manifest())
    _add(w, "one.txt", "alpha beta gamma")
    assert not store_mod.exists(index_dir)
    w.commit()
    first = Store.open(index_dir)
    assert first.size == 1

    w2 = FaissWriter(index_dir, first.manifest)
    _add(w2, "two.txt", "delta epsilon")
    w2.remove_source("one.txt")
    # The live generation is untouched while the next one is being written.
    again = Store.open(index_dir)
    assert again.size == 1 and set(again.files()) == {"one.txt"}
    again.close()
    w2.abort()
    assert not w2.gen_dir.exists()
    after = Store.open(index_dir)
    assert set(after.files()) == {"one.txt"} and after.size == 1
    q = HashEmbedder().embed(["alpha beta"])
    assert first.search(q, 5) == after.search(q, 5)
    first.close()
    after.close()


def test_commit_replaces_generation_and_sweeps_old_ones(tmp_path):
    index_dir = tmp_path / "idx"
    w = FaissWriter(index_dir, _manifest())
    _add(w, "one.txt", "alpha beta gamma")
    w.commit()
    old_gen = w.gen_dir
    s1 = Store.open(index_dir)
    w2 = FaissWriter(index_dir, s1.manifest)
    _add(w2, "one.txt", "replaced text entirely")
    _add(w2, "two.txt", "delta epsilon")
    w2.commit()
    s1.close()
    s2 = Store.open(index_dir)
    assert s2.gen_dir == w2.gen_dir and not old_gen.exists()
    assert s2.size == 2 and set(s2.files()) == {"one.txt", "two.txt"}
    rows = s2.chunk_rows(i for i, _ in s2.search(HashEmbedder().embed(["x"]), 10)[0])
    assert sorted(r[5] for r in rows.values()) == ["delta epsilon", "replaced text entirely"]
    # Chunk ids are never reused after a replacement.
    assert min(rows) >= 1
    s2.close()


def test_debris_of_an_unfinished_write_is_ignored(built):
    _, s, _ = built
    live = _live(s.index_dir)
    number = int(live.name.split("-")[1]) + 1
    debris = s.index_dir / f"gen-{number:06d}"
    debris.mkdir()
    (debris / store_mod.VECTORS).write_bytes(b"half written")
    store = Store.open(s.index_dir)
    assert store.gen_dir == live
    store.close()
    # The next write clears the debris and succeeds.
    docs = s.index_dir.parent / "docs"
    (docs / "new.txt").write_text("Brand new file about otters.\n")
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert report.added == ("new.txt",)
    store = Store.open(s.index_dir)
    assert "new.txt" in store.files()
    store.close()


def test_empty_store_search_returns_nothing(tmp_path):
    w = FaissWriter(tmp_path / "idx", _manifest())
    w.commit()
    s = Store.open(tmp_path / "idx")
    assert s.size == 0
    assert s.search(np.ones((2, 64), dtype=np.float32), 5) == [[], []]
    s.close()
