"""Where a hit is in its document: the location label and the OCR flag go through both
stores, `--json` and `rag migrate`, and an index written before them still reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fakes import HashEmbedder
from rag.config import Settings
from rag.index import Index
from rag.ingestion import ingest
from rag.manifest import Chunking, EmbedderInfo, FileRecord, new_manifest, now_iso
from rag.stores import backend_for, transaction
from rag.stores.faiss_files import live_generation
from rag.types import Chunk, Hit, Page

TEXTS = {"deck.pptx": ("Quarterly revenue grew in the north region.", "slide 4 notes", False),
         "scan.png": ("Handwritten note about the harbor lantern.", "", True)}


def _store(settings: Settings) -> None:
    """Write two files' chunks with locations straight through the backend's writer."""
    emb = HashEmbedder()
    backend = backend_for(settings)
    with transaction(backend) as tx:
        writer = tx.begin(new_manifest(EmbedderInfo(emb.name, emb.dim, emb.max_tokens), Chunking("x", 32, 4)))
        for n, (source, (text, location, ocr)) in enumerate(TEXTS.items(), start=1):
            chunk = Chunk(source, n, "", 0, len(text), text, len(text.split()), location=location, ocr=ocr)
            writer.add_chunks([chunk], emb.embed([text]))
            writer.add_pages([Page(source, n, text, "text", location=location, ocr=ocr)])
            writer.finish_file(source, FileRecord("0" * 64, 1, 1, len(text), "", now_iso()))
        tx.commit()


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_location_and_ocr_reach_hits_and_json(tmp_path: Path, store: str):
    settings = Settings.load({"index_dir": tmp_path / "idx", "store": store})
    _store(settings)
    index = Index.open(settings=settings, embedder=HashEmbedder())
    try:
        by_source = {h.source: h for h in index.search("revenue north region harbor lantern", k=5)}
    finally:
        index.close()
    deck, scan = by_source["deck.pptx"], by_source["scan.png"]
    assert (deck.location, deck.ocr, deck.to_dict()["location"]) == ("slide 4 notes", False, "slide 4 notes")
    assert (scan.ocr, scan.to_dict()["ocr"], scan.to_dict()["location"]) == (True, True, "p. 2")


def test_where_labels_a_hit_in_the_documents_terms():
    hit = Hit(1, 1.0, 0, "a.pdf", 3, "", 0, 1, "x")
    assert hit.where == "p. 3"
    assert Hit(1, 1.0, 0, "a.md", None, "", 0, 1, "x").where == ""
    assert Hit(1, 1.0, 0, "b.xlsx", 2, "", 0, 1, "x", location="sheet Revenue").where == "sheet Revenue"


def test_migrate_keeps_locations_both_ways(tmp_path: Path):
    from rag.migrate import migrate

    faiss_settings = Settings.load({"index_dir": tmp_path / "idx", "milvus_uri": str(tmp_path / "m.db")})
    _store(faiss_settings)
    migrate(faiss_settings, "milvus")
    milvus = backend_for(faiss_settings, "milvus").open()
    try:
        chunks = [c for _, batch, _ in milvus.export() for c in batch]
    finally:
        milvus.close()
    assert {(c.source, c.location, c.ocr) for c in chunks} == {
        ("deck.pptx", "slide 4 notes", False), ("scan.png", "", True)}


def test_an_index_written_before_locations_reads_and_takes_new_files(tmp_path: Path):
    """A FAISS index whose chunks table lacks the location/ocr columns (as rag wrote it
    before them) opens with the defaults, and the next ingest adds the columns."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "old.md").write_text("Copper kettles whistle on the stove.\n", encoding="utf-8")
    settings = Settings.load({"index_dir": tmp_path / "idx"})
    ingest([docs], settings=settings, embedder=HashEmbedder())
    db = sqlite3.connect(live_generation(settings.index_dir) / "chunks.sqlite")
    db.execute("ALTER TABLE chunks DROP COLUMN location")
    db.execute("ALTER TABLE chunks DROP COLUMN ocr")
    db.commit()
    db.close()
    index = Index.open(settings=settings, embedder=HashEmbedder())
    try:
        (hit,) = index.search("copper kettles", k=1)
    finally:
        index.close()
    assert (hit.location, hit.ocr, hit.to_dict()["location"]) == ("", False, "")
    (docs / "new.md").write_text("Velvet ribbons tie the satchel.\n", encoding="utf-8")
    report = ingest([docs], settings=settings, embedder=HashEmbedder())
    assert report.added == ("new.md",)
    index = Index.open(settings=settings, embedder=HashEmbedder())
    try:
        assert {h.source for h in index.search("velvet ribbons copper kettles", k=5)} == {"old.md", "new.md"}
    finally:
        index.close()


def test_the_terminal_names_the_location_and_marks_ocr():
    from rag.cli_render import where

    assert where(Hit(1, 1.0, 0, "notes.pdf", 3, "", 0, 1, "x")) == "notes.pdf p. 3"
    assert where(Hit(1, 1.0, 0, "a.md", None, "", 0, 1, "x")) == "a.md"
    assert where(Hit(1, 1.0, 0, "deck.pptx", 4, "", 0, 1, "x", location="slide 4 notes")) == "deck.pptx slide 4 notes"
    assert where(Hit(1, 1.0, 0, "scan.png", 1, "", 0, 1, "x", ocr=True)) == "scan.png p. 1 (OCR)"
