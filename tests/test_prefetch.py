"""Ingest with worker processes (`--workers`) stores exactly what the in-process path
stores: the same chunks, pages, failures and warnings, big files included."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from made_files import bad_pdfs, write
from fakes import HashEmbedder

from rag import Settings, ingest
from rag.embedders import count_tokens_with, counting_tokenizer, default_embed_path
from rag.stores.faiss import live_generation

PROJECT = Path(__file__).resolve().parents[1]


class TokenizerHashEmbedder(HashEmbedder):
    """Hash vectors, but counts tokens with the default model's tokenizer file, as the
    real embedders do; workers count with the same file."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer_file = default_embed_path() / "tokenizer.json"
        self._tok = counting_tokenizer(self.tokenizer_file)

    def count_tokens(self, texts):
        return count_tokens_with(self._tok, texts)


def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(PROJECT / "corpus", docs)
    write(docs, bad_pdfs())  # broken, encrypted, blank: failures and notes
    return docs


def stored(index_dir: Path) -> tuple[list, list]:
    db = sqlite3.connect(live_generation(index_dir) / "chunks.sqlite")
    try:
        chunks = db.execute('SELECT id, source, page, heading, start, "end", text, tokens FROM chunks ORDER BY id').fetchall()
        pages = db.execute('SELECT source, page, "offset", text FROM pages ORDER BY source, page, "offset"').fetchall()
    finally:
        db.close()
    return chunks, pages


@pytest.mark.parametrize("big", [False, True])
def test_workers_store_what_the_single_process_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, big: bool):
    if big:  # every file counts as too big for a worker: all loaded in the caller, through the same path
        monkeypatch.setattr("rag.prefetch.IN_PROCESS_BYTES", 100)
    from rag.prefetch import Prefetcher

    from_workers = []

    class Counting(Prefetcher):
        def results(self, items):
            for loaded in super().results(items):
                from_workers.append(loaded is not None)
                yield loaded

    monkeypatch.setattr("rag.engines.local.Prefetcher", Counting)
    docs = folder(tmp_path)
    one = Settings.load({"index_dir": tmp_path / "one", "workers": 0})
    two = one._merged({"index_dir": tmp_path / "two", "workers": 2})
    a = ingest([docs], settings=one, embedder=TokenizerHashEmbedder())
    b = ingest([docs], settings=two, embedder=TokenizerHashEmbedder())
    assert a.added == b.added and a.chunks == b.chunks > 100
    assert a.failed == b.failed and a.warnings == b.warnings and a.repaired == b.repaired
    assert a.failed and a.warnings  # the broken PDFs are reported, by name and reason, either way
    assert stored(tmp_path / "one") == stored(tmp_path / "two")
    assert len(from_workers) == len(b.added) + len(b.failed)
    assert any(from_workers) is not big  # the workers did the loading unless every file was too big


def test_workers_are_not_used_without_a_tokenizer_file(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\nSome text about item {i}.\n")
    report = ingest([docs], settings=Settings.load({"index_dir": tmp_path / "i", "workers": 2}), embedder=HashEmbedder())
    assert len(report.added) == 3 and report.chunks == 3
