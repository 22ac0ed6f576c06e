"""`rag reindex` (rag/reindex.py, rag/cli_reindex.py): a new generation embedded from the
stored chunk texts, the old index intact until the flip and after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes import HashEmbedder, make_folder, settings
from rag.cli import app
from rag.cli_options import EXIT_ERROR, EXIT_INTERRUPTED
from rag.errors import ConfigError
from rag.index import Index
from rag.ingestion import ingest
from rag.reindex import reindex
from rag.stores.faiss import FaissStore as Store

runner = CliRunner()


class Interrupting(HashEmbedder):
    """Embeds `allowed` calls, then acts as Ctrl-C."""

    def __init__(self, allowed: int, **kw) -> None:
        super().__init__(**kw)
        self.allowed = allowed

    def embed(self, texts, batch_size=32, progress=None):
        if self.allowed <= 0:
            raise KeyboardInterrupt
        self.allowed -= 1
        return super().embed(texts, batch_size, progress)


def _state(index_dir: Path) -> dict:
    store = Store.open(index_dir)
    try:
        rows = store._db.execute('SELECT id, source, page, heading, start, "end", text FROM chunks ORDER BY id').fetchall()
        return {"gen": store.gen_dir.name, "manifest": store.manifest, "rows": rows,
                "pages": sorted((p.source, p.text) for p in store.pages())}
    finally:
        store.close()


@pytest.fixture
def built(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    return docs, s


def test_reindex_keeps_every_chunk_and_page_and_records_the_new_embedder(built):
    docs, s = built
    before = _state(s.index_dir)
    other = HashEmbedder(name="test/other", dim=32)
    report = reindex(s, embedder=other)
    assert report.changed and report.chunks == len(before["rows"]) == report.embedded
    assert (report.old_embedder, report.new_embedder) == ("test/hash-embedder", "test/other")
    after = _state(s.index_dir)
    assert after["rows"] == before["rows"] and after["pages"] == before["pages"]
    assert after["manifest"].embedder.name == "test/other" and after["manifest"].embedder.dim == 32
    assert after["manifest"].files == before["manifest"].files
    assert after["manifest"].backend["reindexed_from"]["embedder"] == "test/hash-embedder"
    assert len(list(s.index_dir.glob("gen-*"))) == 1
    index = Index.open(settings=s, embedder=HashEmbedder(name="test/other", dim=32))
    assert index.search("dogs fetch sticks in the park", k=1)[0].source == "dogs.txt"
    index.close()
    with pytest.raises(Exception, match="test/other"):  # the old embedder no longer fits the index
        Index.open(settings=s, embedder=HashEmbedder())
    # An unchanged folder is still unchanged for ingest with the new embedder: nothing read again.
    again = ingest([docs], settings=s, embedder=HashEmbedder(name="test/other", dim=32))
    assert again.chunks_embedded == 0 and again.added == again.updated == ()


def test_reindex_with_the_same_embedder_writes_nothing(built):
    _, s = built
    before = _state(s.index_dir)
    report = reindex(s, embedder=HashEmbedder())
    assert not report.changed and report.embedded == 0
    assert _state(s.index_dir) == before


def test_interrupted_reindex_leaves_the_old_index_and_resumes_from_the_cache(built, tmp_path, monkeypatch):
    _, s = built
    monkeypatch.setattr("rag.reindex._CHUNK_BATCH", 2)  # several embed calls for a few chunks
    s = s.__class__.load({**{"index_dir": s.index_dir, "chunk_tokens": 32, "chunk_overlap": 4},
                          "embed_cache": True, "cache_dir": tmp_path / "cache"})
    before = _state(s.index_dir)
    with pytest.raises(KeyboardInterrupt):
        reindex(s, embedder=Interrupting(1, name="test/other", dim=32))
    assert _state(s.index_dir) == before
    assert [p.name for p in s.index_dir.glob("gen-*")] == [before["gen"]], "the unfinished generation is swept"
    resumed = reindex(s, embedder=HashEmbedder(name="test/other", dim=32))
    assert resumed.changed and resumed.embedded < resumed.chunks  # the first batch came from the cache
    assert _state(s.index_dir)["rows"] == before["rows"]


def test_reindex_refuses_a_milvus_index(built, tmp_path):
    _, s = built
    with pytest.raises(ConfigError, match="faiss"):
        reindex(s.__class__.load({"index_dir": s.index_dir, "store": "milvus"}), embedder=HashEmbedder())


# -- the command ----------------------------------------------------------------------


@pytest.fixture
def other_model(monkeypatch, tmp_path) -> Path:
    """`--embed-model DIR` gives a 32-d hash embedder named after DIR."""
    folder = tmp_path / "other-model"
    folder.mkdir()
    monkeypatch.setattr("rag.reindex.make_embedder", lambda s: HashEmbedder(name=str(s.embed_model), dim=32))
    return folder


def test_cli_reindex_success(built, other_model):
    _, s = built
    result = runner.invoke(app, ["reindex", "--index-dir", str(s.index_dir), "--embed-model", str(other_model),
                                 "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["changed"] and report["new_embedder"] == str(other_model) and report["chunks"] > 3
    assert _state(s.index_dir)["manifest"].embedder.name == str(other_model)
    plain = runner.invoke(app, ["reindex", "--index-dir", str(s.index_dir), "--embed-model", str(other_model), "-q"])
    assert plain.exit_code == 0 and "nothing to do" in plain.stdout


def test_cli_reindex_interrupted_keeps_the_old_index(built, monkeypatch, tmp_path):
    _, s = built
    before = _state(s.index_dir)
    monkeypatch.setattr("rag.reindex.make_embedder", lambda _: Interrupting(0, name="test/other", dim=32))
    result = runner.invoke(app, ["reindex", "--index-dir", str(s.index_dir), "--embed-model", str(tmp_path), "-q"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert _state(s.index_dir) == before


def test_cli_reindex_wrong_model_name_is_one_clear_error(built, tmp_path):
    _, s = built
    before = _state(s.index_dir)
    missing = tmp_path / "no-such-model"
    result = runner.invoke(app, ["reindex", "--index-dir", str(s.index_dir), "--embed-model", str(missing)])
    assert result.exit_code == EXIT_ERROR
    assert str(missing) in result.stderr and "does not exist" in result.stderr
    assert _state(s.index_dir) == before


def test_cli_reindex_without_an_index_says_so(tmp_path, other_model):
    result = runner.invoke(app, ["reindex", "--index-dir", str(tmp_path / "none"), "--embed-model", str(other_model)])
    assert result.exit_code == EXIT_ERROR and "rag ingest" in result.stderr
