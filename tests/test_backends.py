"""The two store backends side by side: `rag migrate` round trips, what only the Milvus
store has to get right (killed writers, filters, quoting, milvus-lite's process lock),
and the CLI's store options. tests/test_pipeline.py and tests/test_retrieval.py run
their whole suites on both backends; tests/test_e2e_milvus.py runs the real models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fakes import HashEmbedder
from rag.cli import app
from rag.config import Settings
from rag.errors import ConfigError, IndexLockedError, RagError
from rag.migrate import migrate
from rag.index import Index
from rag.ingestion import ingest
from rag.types import Where
from rag.stores import FileRecord, backend_for
from rag.stores.milvus_db import query_terms, quote, terms, where_filter
from rag.types import Chunk
from fakes import QUERIES, TEXTS, make_folder

runner = CliRunner()


def settings(tmp_path: Path, store: str, index: str = "index", **kw) -> Settings:
    return Settings.load({"index_dir": tmp_path / index, "store": store, "chunk_tokens": 32, "chunk_overlap": 4,
                          "milvus_uri": str(tmp_path / "milvus.db"), **kw})


def results(s: Settings, mode: str) -> list[list[tuple[int, str, float]]]:
    index = Index.open(settings=s, embedder=HashEmbedder())
    try:
        return [[(h.chunk_id, h.source, round(h.score, 4)) for h in index.search(q, 10, mode)] for q in QUERIES]
    finally:
        index.close()


def ties_sorted(runs: list[list[tuple[int, str, float]]]) -> list[list[tuple[int, str, float]]]:
    """Rankings with equal scores put in id order: engines may break ties either way."""
    return [sorted(run, key=lambda h: (-h[2], h[0])) for run in runs]


def contents(s: Settings) -> tuple[dict, dict, int]:
    """Files, every page's text and the next chunk id of an index."""
    store = backend_for(s).open()
    try:
        pages = {}
        for p in store.pages():
            pages.setdefault((p.source, p.page), []).append(p)
        texts = {key: store.page_text(*key) for key in pages}
        return {k: v.__dict__ for k, v in store.files().items()}, texts, store.manifest.next_id
    finally:
        store.close()


def test_migrate_round_trip_keeps_counts_ids_vectors_and_results(tmp_path):
    docs = make_folder(tmp_path / "docs")
    faiss_a = settings(tmp_path, "faiss")
    ingest([docs], settings=faiss_a, embedder=HashEmbedder())
    (docs / "dogs.txt").write_text("Dogs chase cats around the garden.\n")  # ids with a gap
    ingest([docs], settings=faiss_a, embedder=HashEmbedder())
    before = {mode: results(faiss_a, mode) for mode in ("dense", "lexical", "hybrid")}

    report = migrate(faiss_a, "milvus")
    milvus = settings(tmp_path, "milvus")
    assert (report.source, report.destination) == ("faiss", "milvus")
    assert report.chunks == backend_for(milvus).open().size == backend_for(faiss_a).open().size
    assert report.files == 3
    assert ties_sorted(results(milvus, "dense")) == ties_sorted(before["dense"])
    assert contents(milvus) == contents(faiss_a)
    lexical = results(milvus, "lexical")
    for got, want in zip(lexical, before["lexical"]):  # another BM25 engine: same best match
        assert [h[:2] for h in got[:1]] == [h[:2] for h in want[:1]]

    faiss_b = settings(tmp_path, "milvus", index="back")
    back = migrate(faiss_b, "faiss")
    assert back.chunks == report.chunks
    copy = settings(tmp_path, "faiss", index="back")
    assert contents(copy) == contents(faiss_a)
    for mode in ("dense", "lexical", "hybrid"):
        assert results(copy, mode) == before[mode], mode
    a, b = backend_for(faiss_a).open(), backend_for(copy).open()
    ids = sorted(i for batch, _, _ in a.export() for i in batch)
    assert np.array_equal(a.vectors_of(ids), b.vectors_of(ids))


def test_migrate_refuses_the_same_store_and_an_occupied_destination(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "faiss")
    ingest([docs], settings=s, embedder=HashEmbedder())
    with pytest.raises(ConfigError, match="already in faiss"):
        migrate(s, "faiss")
    with pytest.raises(ConfigError, match="--to"):
        migrate(s, "chroma")
    migrate(s, "milvus")
    with pytest.raises(RagError, match="--replace"):
        migrate(s, "milvus")
    (docs / "new.txt").write_text("Otters float on their backs.\n")
    ingest([docs], settings=s, embedder=HashEmbedder())
    assert migrate(s, "milvus", replace=True).files == 4
    assert "new.txt" in backend_for(settings(tmp_path, "milvus")).open().files()


def test_a_killed_milvus_writer_leaves_nothing_visible_and_the_next_write_sweeps_it(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    before = results(s, "hybrid")
    backend = backend_for(s)
    writer = backend.writer(backend.read_manifest())
    chunk = Chunk(source="cats.md", page=None, heading="", start=0, end=9, text="Cats bark", tokens=2)
    writer.add_chunks([chunk], HashEmbedder().embed(["cats sleep in the sun"]))
    writer.finish_file("cats.md", backend.open().files()["cats.md"])
    del writer  # killed: no commit, no abort
    assert results(s, "hybrid") == before
    client = backend.open()._client
    collection = backend.open().chunks_collection
    count = lambda: client.query(collection, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"]
    assert count() == backend.open().size + 1
    (docs / "new.txt").write_text("Otters float on their backs.\n")
    ingest([docs], settings=s, embedder=HashEmbedder())
    assert count() == backend.open().size  # swept


def test_a_milvus_commit_killed_after_its_flip_shows_only_the_new_version(tmp_path, monkeypatch):
    import rag.stores.milvus_write as milvus

    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "dogs.txt").write_text("Zebras gallop across the savanna.\n")

    def killed(*args, **kwargs):  # the sweep of a tidied index does not call it
        raise KeyboardInterrupt  # the process is stopped between the head flip and the cleanup

    monkeypatch.setattr(milvus, "tidy", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest([docs], settings=s, embedder=HashEmbedder())
    monkeypatch.undo()
    index = Index.open(settings=s, embedder=HashEmbedder())
    hits = index.search("dogs bark mailman zebras savanna", 20)
    assert [h.text for h in hits if h.source == "dogs.txt"] == ["Zebras gallop across the savanna."]
    assert index.store.size == sum(r.chunks for r in index.store.files().values())
    assert "Zebras" in index.store.page_text("dogs.txt", None)
    index.close()
    (docs / "new.txt").write_text("Otters float on their backs.\n")
    ingest([docs], settings=s, embedder=HashEmbedder())  # its sweep deletes the old version's rows
    store = backend_for(s).open()
    rows = store._client.query(store.chunks_collection, filter='source == "dogs.txt"', output_fields=["text"])
    assert [r["text"] for r in rows] == ["Zebras gallop across the savanna."]


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_an_interrupt_during_the_cleanup_after_a_commit_keeps_the_commit(tmp_path, monkeypatch, store):
    import rag.stores.faiss as faiss
    import rag.stores.milvus_write as milvus

    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, store)
    ingest([docs], settings=s, embedder=HashEmbedder())
    (docs / "new.txt").write_text("Otters float on their backs.\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if store == "faiss":
        monkeypatch.setattr(faiss.FaissWriter, "_sweep", interrupted)
    else:
        monkeypatch.setattr(milvus, "tidy", lambda *a, **k: None)
        real_put = milvus.Connection.put

        def put(self, values):
            real_put(self, values)
            if "head" in values:
                raise KeyboardInterrupt

        monkeypatch.setattr(milvus.Connection, "put", put)
    with pytest.raises(KeyboardInterrupt):
        ingest([docs], settings=s, embedder=HashEmbedder())
    monkeypatch.undo()
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert "new.txt" in index.store.files()
    assert index.search("otters float", 1)[0].source == "new.txt"
    index.close()


def test_where_becomes_a_milvus_filter_and_still_holds():
    assert where_filter(None) == ""
    assert where_filter(Where.parse(["type=pdf"])) == 'ext in ["pdf"]'
    assert where_filter(Where.parse(["type=md", "type=txt"])) == 'ext in ["markdown", "md", "txt"]'
    assert where_filter(Where.parse(["source=notes/*"])) == '(source like "notes/%")'
    assert where_filter(Where.parse(["source=a?.txt"])) == '(source like "a_.txt" or source like "%/a_.txt")'
    assert where_filter(Where.parse(["source=[ab].md"])) == ""  # left to the retriever
    assert quote('a "b" \\ c\n') == '"a \\"b\\" \\\\ c\\n"'
    with pytest.raises(ValueError):
        quote("bell\x07")


def test_terms_are_folded_and_stemmed_like_fts5_porter():
    assert terms("Tokenizers SPLIT running Café") == "token split run cafe"
    assert query_terms("What are the tokenizers of the café?") == ["token", "cafe"]


def test_odd_file_names_survive_update_and_removal_on_milvus(tmp_path):
    names = {'say "hi".txt': "Quoted names hold parrots.\n", "back\\slash.txt": "Backslashes hold herons.\n",
             "ünï cödé.md": "Unicode names hold ibises.\n"}
    docs = make_folder(tmp_path / "docs", names)
    s = settings(tmp_path, "milvus")
    assert sorted(ingest([docs], settings=s, embedder=HashEmbedder()).added) == sorted(names)
    for name in names:
        (docs / name).write_text(f"Now {name} holds storks.\n")
    assert sorted(ingest([docs], settings=s, embedder=HashEmbedder()).updated) == sorted(names)
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert {h.source for h in index.search("holds storks", 10)} == set(names)
    assert not [h for h in index.search("parrots herons ibises", 10, mode="lexical")]
    assert all("storks" in index.store.page_text(n, None) for n in names)
    index.close()
    (docs / 'say "hi".txt').unlink()
    assert ingest([docs], settings=s, embedder=HashEmbedder()).removed == ('say "hi".txt',)


def test_a_milvus_lite_file_open_in_another_process_is_a_clear_error(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    db = s.milvus_target
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pymilvus import MilvusClient
        MilvusClient({db!r}); print("open", flush=True); time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(IndexLockedError, match="another process.*Milvus server"):
            ingest([docs], settings=s, embedder=HashEmbedder())
    finally:
        holder.kill()
        holder.wait()


def test_bad_milvus_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="store"):
        Settings.load({"store": "chroma"})
    with pytest.raises(ConfigError, match="milvus_collection"):
        Settings.load({"milvus_collection": "my-index"})
    with pytest.raises(ConfigError, match=r"\.db"):
        backend_for(Settings.load({"store": "milvus", "milvus_uri": str(tmp_path / "x.sqlite")}))
    result = runner.invoke(app, ["search", "cats", "--store", "milvus", "--index-dir", str(tmp_path / "none")])
    assert result.exit_code != 0 and "no index" in result.stderr and "--store milvus" in result.stderr


def test_cli_store_options_and_migrate_json(tmp_path, hash_models):
    docs = make_folder(tmp_path / "docs")
    uri = str(tmp_path / "m" / "team.db")
    common = ["--index-dir", str(tmp_path / "idx"), "--milvus-uri", uri, "--milvus-collection", "team_docs"]
    result = runner.invoke(app, ["ingest", str(docs), "--store", "milvus", *common, "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["index_dir"] == f"{uri} (team_docs)"
    listing = json.loads(runner.invoke(app, ["list", "--store", "milvus", *common, "--json"]).stdout)
    assert listing["store"] == "milvus" and len(listing["files"]) == 3 and listing["bytes_on_disk"] > 0
    moved = runner.invoke(app, ["migrate", "--to", "faiss", "--store", "milvus", *common, "--json", "-q"])
    assert moved.exit_code == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert {k: report[k] for k in ("source", "destination", "files", "chunks")} == {
        "source": "milvus", "destination": "faiss", "files": 3, "chunks": listing["chunks"]}
    faiss = json.loads(runner.invoke(app, ["list", *common, "--json"]).stdout)
    assert faiss["store"] == "faiss" and faiss["chunks"] == listing["chunks"]
    removed = runner.invoke(app, ["remove", "cats.md", "--store", "milvus", *common, "--json"])
    assert json.loads(removed.stdout) == {"removed": ["cats.md"]}
    after = json.loads(runner.invoke(app, ["list", "--store", "milvus", *common, "--json"]).stdout)
    assert [f["path"] for f in after["files"]] == ["dogs.txt", "sub/birds.md"]
    assert set(TEXTS) - {"cats.md"} == {f["path"] for f in after["files"]}


def test_a_milvus_reader_finishes_its_query_across_a_commit_and_then_follows_it(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder())
    ranked = index.store.search(HashEmbedder().embed(["dogs fetch sticks"]), 3)[0]
    (docs / "dogs.txt").write_text("Zebras gallop across the savanna.\n")
    ingest([docs], settings=s, embedder=HashEmbedder())  # supersedes the chunk just found
    assert "mailman" in index.store.hits(ranked)[0].text  # still readable for one more commit
    assert "Zebras" in index.search("zebras gallop savanna", 1)[0].text  # the next query sees the commit
    assert "Zebras" in index.store.page_text("dogs.txt", None)
    index.close()


def test_milvus_where_type_ignores_case_and_control_characters_in_names_are_fine(tmp_path):
    names = {"Loud.TXT": "Shouting otters in capitals.\n", "bell\x07.md": "Otters ring a bell.\n",
             "quiet.md": "Whispering otters.\n"}
    docs = make_folder(tmp_path / "docs", names)
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert [h.source for h in index.search("otters", 5, where=Where.parse(["type=txt"]))] == ["Loud.TXT"]
    assert {h.source for h in index.search("otters", 5, where=Where.parse(["type=md"]))} == {"bell\x07.md", "quiet.md"}
    index.close()
    (docs / "bell\x07.md").write_text("Otters ring two bells now.\n")
    assert ingest([docs], settings=s, embedder=HashEmbedder()).updated == ("bell\x07.md",)
    (docs / "bell\x07.md").unlink()
    assert ingest([docs], settings=s, embedder=HashEmbedder()).removed == ("bell\x07.md",)


def test_a_damaged_milvus_index_says_rebuild_and_rebuild_mends_it(tmp_path):
    from rag.errors import IndexCorruptError
    from rag.stores.milvus_db import Connection

    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    conn = Connection(s.milvus_target, "rag", None)
    conn.put({"head": "{not json"})
    conn.close()
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        Index.open(settings=s, embedder=HashEmbedder())
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        ingest([docs], settings=s, embedder=HashEmbedder())
    report = ingest([docs], settings=s, embedder=HashEmbedder(), rebuild=True)
    assert report.files == 3
    assert Index.open(settings=s, embedder=HashEmbedder()).search("birds build nests", 1)[0].source == "sub/birds.md"


def test_indexes_with_overlapping_prefixes_share_a_milvus_database_safely(tmp_path):
    a = make_folder(tmp_path / "a", {"one.txt": "Apples are red.\n"})
    b = make_folder(tmp_path / "b", {"two.txt": "Bananas are yellow.\n"})
    first = settings(tmp_path, "milvus")
    second = settings(tmp_path, "milvus", milvus_collection="rag_pages_v2")
    ingest([a], settings=first, embedder=HashEmbedder())
    ingest([b], settings=second, embedder=HashEmbedder())
    ingest([a], settings=first, embedder=HashEmbedder(), rebuild=True)
    ingest([a], settings=first, embedder=HashEmbedder(), rebuild=True)  # drops the first one's old collections
    assert set(backend_for(second).open().files()) == {"two.txt"}
    assert set(backend_for(first).open().files()) == {"one.txt"}


def test_a_milvus_writer_that_lost_its_lock_commits_nothing(tmp_path):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, "milvus")
    ingest([docs], settings=s, embedder=HashEmbedder())
    backend = backend_for(s)
    with backend.write_lock():
        writer = backend.writer(backend.read_manifest())
        chunk = Chunk(source="new.txt", page=None, heading="", start=0, end=6, text="Otters", tokens=1)
        writer.add_chunks([chunk], HashEmbedder().embed(["Otters"]))
        writer.finish_file("new.txt", FileRecord("0" * 64, 1, 1, 6, "", "2026-11-25T00:00:00Z"))
        writer._conn.put({"lock": json.dumps({"host": "elsewhere", "pid": 1, "token": "theirs", "expires": 1e12})})
        with pytest.raises(IndexLockedError, match="lost the write lock"):
            writer.commit()
        writer.abort()
    assert "new.txt" not in backend.open().files()


def test_milvus_where_type_markdown_means_md_files_as_on_faiss(tmp_path):
    docs = make_folder(tmp_path / "docs", {"a.markdown": "Otters in markdown.\n", "b.md": "Otters in md.\n",
                                           "c.txt": "Otters in text.\n"})
    for store in ("faiss", "milvus"):
        s = settings(tmp_path, store)
        ingest([docs], settings=s, embedder=HashEmbedder())
        index = Index.open(settings=s, embedder=HashEmbedder())
        for kind, want in (("markdown", {"a.markdown"}), ("md", {"a.markdown", "b.md"})):
            got = {h.source for h in index.search("otters", 5, where=Where.parse([f"type={kind}"]))}
            assert got == want, (store, kind, got)
        index.close()
