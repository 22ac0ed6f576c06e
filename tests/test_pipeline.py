"""ingest() and Index with the fake embedder and generator: incremental updates, names, mismatches.

Every test here runs twice: on the FAISS store and on the Milvus store (milvus-lite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import EchoGenerator, HashEmbedder
from rag.config import Settings
from rag.errors import ConfigError, IndexMismatchError, RagError
from rag.index import Index
from rag.ingestion import ingest
from rag.prompt import NOT_FOUND
from rag.stores import backend_for
from fakes import TEXTS, make_folder, settings


@pytest.fixture(autouse=True, params=["faiss", "milvus"])
def store_backend(request, monkeypatch) -> str:
    monkeypatch.setenv("RAG_STORE", request.param)
    return request.param


def open_store(s: Settings):
    return backend_for(s).open()


def hits_for(s: Settings, query: str, k: int = 20):
    index = Index.open(settings=s, embedder=HashEmbedder())
    try:
        return index.search(query, k=k)
    finally:
        index.close()


def test_first_ingest_adds_every_file(tmp_path, hash_embedder):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    emb = hash_embedder
    report = ingest([docs], settings=s, embedder=emb)
    assert sorted(report.added) == sorted(TEXTS)
    assert report.updated == report.removed == report.unchanged == report.failed == ()
    assert report.files == 3
    assert report.chunks == report.chunks_embedded == len(emb.embedded) > 0
    assert report.index_dir == backend_for(s).location


def test_second_ingest_of_unchanged_folder_embeds_nothing(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    first = ingest([docs], settings=s, embedder=HashEmbedder())
    emb = HashEmbedder()
    second = ingest([docs], settings=s, embedder=emb)
    assert second.chunks_embedded == 0 and emb.embedded == []
    assert sorted(second.unchanged) == sorted(TEXTS)
    assert second.added == second.updated == second.removed == ()
    assert second.chunks == first.chunks and second.files == first.files


def test_changed_file_is_updated_and_only_it_is_embedded(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "dogs.txt").write_text("Zebras gallop across the savanna.\n")
    emb = HashEmbedder()
    report = ingest([docs], settings=s, embedder=emb)
    assert report.updated == ("dogs.txt",)
    assert sorted(report.unchanged) == ["cats.md", "sub/birds.md"]
    assert report.chunks_embedded == 1 and emb.embedded == ["Zebras gallop across the savanna."]
    hits = hits_for(s, "zebras gallop savanna")
    assert hits[0].source == "dogs.txt" and "Zebras" in hits[0].text
    assert not any("mailman" in h.text for h in hits), "the old version's chunks are gone"


def test_deleted_file_is_removed_from_search(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    first = ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "sub" / "birds.md").unlink()
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert report.removed == ("sub/birds.md",)
    assert report.files == 2 and report.chunks < first.chunks
    hits = hits_for(s, "birds sing at dawn nests twigs", k=50)
    assert hits and not any(h.source == "sub/birds.md" for h in hits)
    store = open_store(s)
    assert "sub/birds.md" not in store.files()
    assert store.page_text("sub/birds.md", None) is None
    store.close()


def test_ingesting_another_folder_keeps_the_first(tmp_path):
    s = settings(tmp_path)
    ingest([make_folder(tmp_path / "a", {"one.txt": "Apples are red fruit.\n"})], settings=s, embedder=HashEmbedder())
    report = ingest([make_folder(tmp_path / "b", {"two.txt": "Bananas are yellow.\n"})], settings=s,
                    embedder=HashEmbedder())
    assert report.added == ("two.txt",) and report.removed == ()
    assert {h.source for h in hits_for(s, "fruit")} == {"one.txt", "two.txt"}


def test_source_names_relative_for_folder_absolute_for_file(tmp_path):
    docs = make_folder(tmp_path / "docs")
    single = tmp_path / "elsewhere" / "lone.txt"
    single.parent.mkdir()
    single.write_text("A lone file about lighthouses.\n")
    s = settings(tmp_path)
    report = ingest([docs, single], settings=s, embedder=HashEmbedder())
    assert str(single.resolve()) in report.added
    assert "sub/birds.md" in report.added
    store = open_store(s)
    names = set(store.files())
    store.close()
    assert names == set(TEXTS) | {str(single.resolve())}
    assert Path(str(single.resolve())).is_absolute()
    assert not any(Path(n).is_absolute() for n in names - {str(single.resolve())})
    top = hits_for(s, "lone lighthouses")[0]
    assert top.source == str(single.resolve())


def test_relative_folder_argument_gives_relative_names(tmp_path, monkeypatch):
    make_folder(tmp_path / "docs")
    monkeypatch.chdir(tmp_path)
    report = ingest(["docs"], settings=settings(tmp_path), embedder=HashEmbedder())
    assert sorted(report.added) == sorted(TEXTS)


def test_bad_file_is_reported_and_good_ones_stored(tmp_path):
    docs = make_folder(tmp_path / "docs")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(b"abc\x00def")
    (docs / "ignored.dwg").write_bytes(b"not supported, not looked at")
    (docs / ".hidden.md").write_text("# Hidden\n\nNever indexed.\n")
    s = settings(tmp_path)
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    failed = {f.path: f.reason for f in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt"}
    assert "empty" in failed["empty.txt"] and "binary" in failed["binary.txt"]
    assert sorted(report.added) == sorted(TEXTS)
    assert report.files == 3
    assert report.to_dict()["failed"][0]["path"] in failed


def test_file_that_breaks_keeps_its_earlier_version(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "dogs.txt").write_bytes(b"")
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert [f.path for f in report.failed] == ["dogs.txt"]
    assert report.updated == () and report.removed == ()
    assert hits_for(s, "dogs bark mailman")[0].source == "dogs.txt"


def test_pdf_pages_are_recorded(tmp_path):
    project = Path(__file__).resolve().parents[1]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cw.pdf").write_bytes((project / "corpus" / "context-windows.pdf").read_bytes())
    s = settings(tmp_path, chunk_tokens=64, chunk_overlap=8)
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert report.added == ("cw.pdf",)
    hits = hits_for(s, "context window KV cache", k=100)
    assert {h.page for h in hits} == {1, 2, 3, 4}
    store = open_store(s)
    assert store.files()["cw.pdf"].pages == 4
    for h in hits:
        assert store.page_text("cw.pdf", h.page)[h.start : h.end] == h.text
    store.close()


def test_encrypted_pdf_with_password(tmp_path):
    from made_files import encrypted_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "locked.pdf").write_bytes(encrypted_pdf("openpassword"))
    (docs / "ok.txt").write_text("Plain text file.\n")
    s = settings(tmp_path)
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert [f.path for f in report.failed] == ["locked.pdf"] and "password" in report.failed[0].reason
    report = ingest([docs], settings=s, embedder=HashEmbedder(), passwords=["openpassword"])
    assert report.added == ("locked.pdf",) and report.failed == ()


def test_other_embedder_name_is_a_mismatch(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    with pytest.raises(IndexMismatchError, match="test/hash-embedder"):
        Index.open(settings=s, embedder=HashEmbedder(name="other/embedder"))
    with pytest.raises(IndexMismatchError):
        ingest([docs], settings=s, embedder=HashEmbedder(name="other/embedder"))
    with pytest.raises(IndexMismatchError):
        Index.open(settings=s, embedder=HashEmbedder(dim=32))


def test_other_chunking_is_a_mismatch_mentioning_rebuild(tmp_path):
    docs = make_folder(tmp_path / "docs")
    ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    other = settings(tmp_path, chunk_tokens=48)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        ingest([docs], settings=other, embedder=HashEmbedder())
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        ingest([docs], settings=settings(tmp_path, chunk_overlap=8), embedder=HashEmbedder())
    # Nothing changed on disk; a rebuild with the new settings works.
    assert open_store(other).manifest.chunking.chunk_tokens == 32
    report = ingest([docs], settings=other, embedder=HashEmbedder(), rebuild=True)
    assert sorted(report.updated) == sorted(TEXTS) and report.added == ()
    assert open_store(other).manifest.chunking.chunk_tokens == 48


def test_rebuild_drops_files_not_ingested_again(tmp_path):
    s = settings(tmp_path)
    a = make_folder(tmp_path / "a", {"one.txt": "Apples.\n"})
    b = make_folder(tmp_path / "b", {"two.txt": "Bananas.\n"})
    ingest([a, b], settings=s, embedder=HashEmbedder())
    report = ingest([a], settings=s, embedder=HashEmbedder(), rebuild=True)
    assert report.files == 1 and report.updated == ("one.txt",)
    assert report.removed == ("two.txt",)
    assert set(open_store(s).files()) == {"one.txt"}


def test_failed_embedding_leaves_the_index_as_it_was(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    before = hits_for(s, "cats dogs birds")
    generation = open_store(s).manifest.backend["generation"]

    class Broken(HashEmbedder):
        def embed(self, texts, batch_size=32, progress=None):
            raise RuntimeError("embedder crashed")

    (docs / "new.txt").write_text("New file.\n")
    with pytest.raises(RuntimeError, match="crashed"):
        ingest([docs], settings=s, embedder=Broken())
    after = hits_for(s, "cats dogs birds")
    assert [(h.chunk_id, h.score) for h in before] == [(h.chunk_id, h.score) for h in after]
    assert open_store(s).manifest.backend["generation"] == generation
    if s.store == "faiss":
        assert len([p for p in s.index_dir.glob("gen-*")]) == 1


def test_missing_input_and_no_documents(tmp_path):
    s = settings(tmp_path)
    with pytest.raises(RagError, match="no such file"):
        ingest([tmp_path / "missing"], settings=s, embedder=HashEmbedder())
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "x.dwg").write_bytes(b"x")
    with pytest.raises(RagError, match="no supported documents"):
        ingest([tmp_path / "nothing"], settings=s, embedder=HashEmbedder())


def test_index_dir_comes_from_environment_by_default(tmp_path):
    docs = make_folder(tmp_path / "docs")
    report = ingest([docs], embedder=HashEmbedder())  # settings from RAG_INDEX_DIR (conftest)
    assert report.index_dir.startswith(str(tmp_path / "index"))
    assert open_store(Settings.load()).size == report.chunks


def test_chunks_respect_embedder_max_tokens(tmp_path):
    docs = make_folder(tmp_path / "docs", {"long.txt": " ".join(f"w{i}" for i in range(400)) + ".\n"})
    s = settings(tmp_path, chunk_tokens=200, chunk_overlap=10)
    emb = HashEmbedder(max_tokens=50)
    ingest([docs], settings=s, embedder=emb)
    assert emb.embedded and max(len(t.split()) for t in emb.embedded) <= 50


def test_ask_with_echo_generator(tmp_path, echo_generator):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, fallback=False, strategy="llm")  # the plain LLM path; test_ask.py covers the rest
    ingest([docs], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder(), generator=echo_generator)
    tokens: list[str] = []
    answer = index.ask("Where do dogs fetch sticks every morning?", k=3, on_token=tokens.append)
    index.close()
    assert answer.text == "The sources say so [1]." == "".join(tokens).strip()
    assert len(echo_generator.prompts) == 1
    prompt = echo_generator.prompts[0]
    assert "Where do dogs fetch sticks every morning?" in prompt
    assert answer.sources and answer.sources[0].source == "dogs.txt"
    assert answer.sources[0].text.strip() in prompt
    assert [c.id for c in answer.citations if not c.attributed] == [1]
    assert answer.citations[0].hit == answer.sources[0]
    assert answer.models == {"embedder": "test/hash-embedder", "llm": "echo"}


def test_ask_below_min_score_answers_not_found_without_the_llm(tmp_path, echo_generator):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, min_score=0.99)
    ingest([docs], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder(), generator=echo_generator)
    answer = index.ask("quantum chromodynamics of gluons?", k=3)
    assert answer.text == NOT_FOUND and not answer.answerable
    assert answer.sources == () and answer.citations == ()
    assert echo_generator.prompts == []
    with pytest.raises(ConfigError, match="empty"):
        index.ask("   ")
    with pytest.raises(ConfigError):
        index.search("cats", k=-1)
    index.close()


def test_search_k_zero_is_an_error(tmp_path):
    from rag.errors import ConfigError

    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    with pytest.raises(ConfigError):
        Index.open(settings=s, embedder=HashEmbedder()).search("cats", k=0)


def test_a_file_that_keeps_failing_writes_no_new_generation(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "empty.txt").write_text("")
    live = open_store(s).manifest.backend["generation"]
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert [f.path for f in report.failed] == ["empty.txt"]
    assert open_store(s).manifest.backend["generation"] == live


def test_a_second_writer_is_refused_at_once_while_readers_keep_working(tmp_path):
    from rag.errors import IndexLockedError
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    before = hits_for(s, "cats dogs birds")
    (docs / "new.txt").write_text("Fresh words.\n")
    with backend_for(s).write_lock():
        with pytest.raises(IndexLockedError, match="another process is writing"):
            ingest([docs], settings=s, embedder=HashEmbedder())
        assert hits_for(s, "cats dogs birds") == before
    assert ingest([docs], settings=s, embedder=HashEmbedder()).added == ("new.txt",)
