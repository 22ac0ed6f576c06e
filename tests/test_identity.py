"""A file is its folder plus its path there (rag/identity.py): two folders' README.md are
two entries with readable names, a moved file keeps its vectors, and an index written
in format 2 (files named by path alone) is read and upgraded without re-embedding, on
both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes import HashEmbedder, make_folder
from index_state import index_state
from rag.cli import app
from rag.config import Settings
from rag.discover import Input, is_temporary
from rag.identity import name_inputs
from rag.index import Index
from rag.ingestion import ingest
from rag.manifest import FileRecord, Manifest
from rag.stores import backend_for

runner = CliRunner()


def settings(tmp_path: Path, store: str = "faiss", index: str = "index") -> Settings:
    return Settings.load({"index_dir": tmp_path / index, "store": store, "chunk_tokens": 32, "chunk_overlap": 4,
                          "milvus_uri": str(tmp_path / f"{index}.db"), "embed_cache": False})


def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    docs = make_folder(tmp_path / "docs", {"README.md": "# Docs\n\nThe docs folder explains pelicans.\n",
                                           "guide.md": "A guide to herons and egrets.\n"})
    notes = make_folder(tmp_path / "notes", {"README.md": "# Notes\n\nThe notes folder lists penguins.\n"})
    return docs, notes


def rec(root: str, relative: str = "") -> FileRecord:
    return FileRecord("0" * 64, 1, 1, 1, root, "t", relative)


def item(root: str, relative: str) -> Input:
    return Input(Path(root) / relative, relative, root, relative)


def test_names_stay_bare_until_two_files_share_a_path_and_then_carry_the_folder():
    files = {"README.md": rec("/a/docs", "README.md"), "x.md": rec("/a/docs", "x.md")}
    named = name_inputs([item("/a/docs", "README.md"), item("/b/notes", "README.md"), item("/b/notes", "y.md"),
                         item("/c/docs", "x.md")], files)
    assert [i.source for i in named] == ["README.md", "notes/README.md", "y.md", "docs/x.md"]
    both = name_inputs([item("/a/docs", "README.md"), item("/b/notes", "README.md")], {})
    assert [i.source for i in both] == ["docs/README.md", "notes/README.md"]
    twins = name_inputs([item("/a/docs", "x.md"), item("/c/docs", "x.md")], {})
    assert [i.source for i in twins] == ["docs/x.md", "c/docs/x.md"]
    # A format 2 record (no relative path) is found by its name.
    assert [i.source for i in name_inputs([item("/a/docs", "x.md")], {"x.md": rec("/a/docs")})] == ["x.md"]


def test_two_folders_with_the_same_file_name_keep_both_files(tmp_path):
    docs, notes = two_folders(tmp_path)
    s = settings(tmp_path)
    report = ingest([docs, notes], settings=s, embedder=HashEmbedder())
    assert sorted(report.added) == ["docs/README.md", "guide.md", "notes/README.md"]
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert index.search("The docs folder explains pelicans.", 1)[0].source == "docs/README.md"
    assert index.search("The notes folder lists penguins.", 1)[0].source == "notes/README.md"
    index.close()
    # Each folder synced alone touches only its own files; the names stay.
    (notes / "README.md").unlink()
    (notes / "todo.md").write_text("Feed the penguins.\n")
    again = ingest([notes], settings=s, embedder=HashEmbedder())
    assert again.removed == ("notes/README.md",) and again.added == ("todo.md",) and again.files == 3
    assert ingest([docs], settings=s, embedder=HashEmbedder()).unchanged == ("docs/README.md", "guide.md")


def test_a_second_folder_ingested_later_does_not_replace_the_first(tmp_path):
    docs, notes = two_folders(tmp_path)
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    report = ingest([notes], settings=s, embedder=HashEmbedder())
    assert report.added == ("notes/README.md",) and report.files == 3
    listing = runner.invoke(app, ["list", "--index-dir", str(s.index_dir), "--json"])
    files = {f["path"]: f for f in json.loads(listing.stdout)["files"]}
    assert files["README.md"]["root"] == str(docs.resolve()) and files["README.md"]["relative"] == "README.md"
    assert files["notes/README.md"]["root"] == str(notes.resolve())
    assert files["notes/README.md"]["relative"] == "README.md"
    table = runner.invoke(app, ["list", "--index-dir", str(s.index_dir)])
    assert table.exit_code == 0 and "folder" in table.stdout and str(notes.name) in table.stdout
    # `rag remove` of a path on disk finds the right one of the two.
    removed = runner.invoke(app, ["remove", str(notes / "README.md"), "--index-dir", str(s.index_dir), "--json"])
    assert json.loads(removed.stdout) == {"removed": ["notes/README.md"]}


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_a_moved_file_and_folder_keep_their_vectors_and_match_a_fresh_ingest(tmp_path, store):
    docs = make_folder(tmp_path / "docs")
    s = settings(tmp_path, store)
    ingest([docs], settings=s, embedder=HashEmbedder())
    ids_before = _ids(s)
    (docs / "cats.md").rename(docs / "felines.md")
    (docs / "sub").rename(docs / "aviary")
    embedder = HashEmbedder()
    report = ingest([docs], settings=s, embedder=embedder)
    assert sorted(report.moved) == [("cats.md", "felines.md"), ("sub/birds.md", "aviary/birds.md")]
    assert report.chunks_embedded == 0 and embedder.embedded == [] and not report.added and not report.removed
    assert {"from": "cats.md", "to": "felines.md"} in report.to_dict()["paths"]["moved"]
    fresh = settings(tmp_path, store, "fresh")
    ingest([docs], settings=fresh, embedder=HashEmbedder())
    assert index_state(s) == index_state(fresh)
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert index.search("birds build nests", 1)[0].source == "aviary/birds.md"
    assert "Birds sing" in index.store.page_text("aviary/birds.md", None)
    index.close()
    if store == "faiss":  # the same rows, renamed
        assert _ids(s) == {k.replace("cats.md", "felines.md").replace("sub/", "aviary/"): v
                           for k, v in ids_before.items()}


def _ids(s: Settings) -> dict[str, list[int]]:
    store = backend_for(s).open()
    try:
        out: dict[str, list[int]] = {}
        for ids, batch, _ in store.export():
            for i, c in zip(ids, batch):
                out.setdefault(c.source, []).append(i)
        return out
    finally:
        store.close()


def _as_format_2(self: Manifest) -> dict:
    """What a format 2 writer wrote: no relative paths, version 2."""
    data = _to_json(self)
    data["format_version"] = 2
    for record in data["files"].values():
        record.pop("relative")
    return data


_to_json = Manifest.to_json


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_a_format_2_index_is_read_and_upgraded_in_place_without_re_embedding(tmp_path, store, monkeypatch):
    docs, notes = two_folders(tmp_path)
    s = settings(tmp_path, store)
    with monkeypatch.context() as m:
        m.setattr(Manifest, "to_json", _as_format_2)
        ingest([docs], settings=s, embedder=HashEmbedder())
    if store == "faiss":
        live = (s.index_dir / (s.index_dir / "CURRENT").read_text().strip() / "manifest.json")
        assert json.loads(live.read_text())["format_version"] == 2
    before = index_state(s)
    assert before["README.md"][:2] == (str(docs.resolve()), "README.md")  # read as format 3
    index = Index.open(settings=s, embedder=HashEmbedder())
    assert index.search("The docs folder explains pelicans.", 1)[0].source == "README.md"
    index.close()

    embedder = HashEmbedder()
    report = ingest([docs, notes], settings=s, embedder=embedder)
    assert report.added == ("notes/README.md",) and report.unchanged == ("README.md", "guide.md")
    assert all("penguins" in t for t in embedder.embedded)  # only the new file was embedded
    after = index_state(s)
    assert {k: after[k] for k in before} == before
    assert backend_for(s).read_manifest().to_json()["format_version"] == 3
    assert backend_for(s).read_manifest().to_json()["files"]["README.md"]["relative"] == "README.md"


def test_editor_and_download_temporaries_are_never_documents(tmp_path):
    for name in ("notes.md.swp", ".notes.md.swp", "notes.md~", ".#notes.md", "#notes.md#", "~$report.docx",
                 "report.pdf.crdownload", "film.part", "draft.tmp", ".DS_Store", "4913"):
        assert is_temporary(name), name
    for name in ("notes.md", "report.docx", "tmp.md", "partial.txt"):
        assert not is_temporary(name), name
    docs = make_folder(tmp_path / "docs", {"a.md": "Alpha text here.\n", "~$a.docx": "lock", "a.md~": "old",
                                           "b.txt.tmp": "half"})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert report.added == ("a.md",) and report.skipped == {}
