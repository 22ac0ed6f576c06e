"""Bad and awkward input: each gets a clear reason, the rest of the folder is stored."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import shared
from fakes import HashEmbedder
from made_files import blank_pdf, damaged_encrypt, encrypted_pdf, write
from typer.testing import CliRunner

from rag import Settings, ingest
from rag import loaders
from rag.loaders import pdf as pdf_loader
from rag.loaders import text as text_loader
from rag.cli import EXIT_FILES_FAILED, app
from rag.errors import LoaderError, RagError
from rag.inventory import list_index, remove
from rag.stores.faiss import FaissStore

runner = CliRunner()


def settings(tmp_path: Path) -> Settings:
    return Settings.load({"index_dir": tmp_path / "idx"})


def folder(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def test_every_kind_of_bad_file_is_named_with_its_reason(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"good.md": "# Good\n\nA perfectly fine document about owls.\n",
                                      "empty.txt": "", "binary.txt": b"\x00\x01\x02garbage\x00"})
    write(docs, {"locked.pdf": encrypted_pdf(), "blank.pdf": blank_pdf(), "bad-encrypt.pdf": damaged_encrypt()})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    reasons = {f.path: f.reason for f in report.failed}
    assert reasons == {
        "empty.txt": "empty file (no text)",
        "binary.txt": "binary data (NUL bytes) in a text file",
        "locked.pdf": "encrypted, needs a password (--pdf-password)",
        "blank.pdf": "no extractable text (blank, or OCR found no text)",
        "bad-encrypt.pdf": "PDF uses something pypdf cannot read (Encryption V=0 NOT supported)",
    }
    assert report.added == ("good.md",)
    assert set(FaissStore.open(tmp_path / "idx").files()) == {"good.md"}


def test_pdf_password_opens_the_encrypted_file(tmp_path: Path):
    docs = folder(tmp_path / "docs", {})
    (docs / "locked.pdf").write_bytes(encrypted_pdf())
    (docs / "rc4.pdf").write_bytes(encrypted_pdf("foo", algorithm="RC4-40"))
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder(),
                    passwords=["wrong", "openpassword", "foo"])
    assert report.failed == () and report.added == ("locked.pdf", "rc4.pdf")


@pytest.mark.shared_data
def test_real_encrypted_and_scanned_pdfs_are_named_with_their_reasons(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"good.md": "# Good\n\nA perfectly fine document about owls.\n"})
    for name in ("sf-libreoffice-writer-password.pdf", "sf-imagemagick-CCITTFaxDecode.pdf"):
        (docs / name).write_bytes(shared("pdfs", name).read_bytes())
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert {f.path: f.reason for f in report.failed} == {
        "sf-libreoffice-writer-password.pdf": "encrypted, needs a password (--pdf-password)",
        "sf-imagemagick-CCITTFaxDecode.pdf": "no extractable text (blank, or OCR found no text)",  # a 16 x 16 smiley
    }
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder(), passwords=["openpassword"])
    assert [f.path for f in report.failed] == ["sf-imagemagick-CCITTFaxDecode.pdf"]


def test_cli_exit_status_is_non_zero_when_a_file_failed(tmp_path: Path, hash_models):
    docs = folder(tmp_path / "docs", {"ok.txt": "Fine words here.\n", "bad.txt": ""})
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == EXIT_FILES_FAILED
    assert "failed: bad.txt: empty file (no text)" in result.stderr
    result = runner.invoke(app, ["ingest", str(docs / "ok.txt"), "--index-dir", str(tmp_path / "idx2")])
    assert result.exit_code == 0


def test_mojibake_is_repaired_and_counted(tmp_path: Path):
    broken = "It’s a café with a 👋 greeting and ordinary words.".encode("utf-8").decode("cp1252", errors="replace")
    docs = folder(tmp_path / "docs", {"moji.txt": broken, "clean.txt": "Naïve café text stays as it is.\n"})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert report.repaired == ("moji.txt",)
    store = FaissStore.open(tmp_path / "idx")
    assert store.page_text("moji.txt", None).startswith("It’s a café")
    assert store.page_text("clean.txt", None) == "Naïve café text stays as it is.\n"
    assert report.to_dict()["repaired"] == ["moji.txt"]


def test_large_text_file_is_streamed_in_segments_with_exact_spans(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(text_loader, "STREAM_BYTES", 10_000)
    monkeypatch.setattr(text_loader, "SEGMENT_BYTES", 2_000)
    paragraphs = [f"Paragraph {i} talks about topic {i % 7} with café words." for i in range(600)]
    text = "\n\n".join(paragraphs) + "\n"
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    notes: list[str] = []
    pages = list(loaders.iter_pages(path, "big.txt", notes))
    assert len(pages) > 5 and "".join(p.text for p in pages) == text
    for page in pages:
        assert text[page.offset : page.offset + len(page.text)] == page.text
        assert len(page.text) <= 2 * 2_000 + 2_000
    docs = tmp_path / "docs"
    docs.mkdir()
    path.rename(docs / "big.txt")
    ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    store = FaissStore.open(tmp_path / "idx")
    rows = store._db.execute('SELECT start, "end", text FROM chunks').fetchall()
    assert rows and all(text[a:b] == t for a, b, t in rows)
    assert store.page_text("big.txt", None) == text


def test_pdf_that_parses_forever_is_stopped_by_the_time_limit(tmp_path: Path, monkeypatch):
    def endless(*args, **kwargs):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(pdf_loader, "_parse_pdf", endless)
    path = tmp_path / "loop.pdf"
    path.write_bytes(b"%PDF-1.4 whatever")
    started = time.monotonic()
    with pytest.raises(LoaderError, match="took longer than 0.3 s"):
        loaders.load(path, "loop.pdf", time_limit=0.3)
    assert time.monotonic() - started < 5


def test_vanished_and_unreadable_files_are_reasons_not_crashes(tmp_path: Path, monkeypatch):
    with pytest.raises(LoaderError, match="file vanished"):
        loaders.load(tmp_path / "gone.txt", "gone.txt")
    path = tmp_path / "secret.txt"
    path.write_text("hidden")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(LoaderError, match="permission denied"):
        loaders.load(path, "secret.txt")


def test_hidden_entries_symlink_loops_and_special_files_are_skipped(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"a.md": "Alpha text.\n", ".secret.md": "Hidden.\n", ".git/config.md": "No.\n",
                                      "sub/b.txt": "Beta text.\n"})
    os.symlink(docs, docs / "sub" / "loop")  # a folder symlink back up the tree
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    os.symlink(docs / "missing.txt", docs / "dangling.txt")
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert sorted(report.added) == ["a.md", "sub/b.txt"] and report.failed == ()


def test_include_and_exclude_globs(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"a.md": "Alpha.\n", "b.txt": "Beta.\n", "drafts/c.md": "Gamma.\n"})
    s = settings(tmp_path)
    assert sorted(ingest([docs], settings=s, embedder=HashEmbedder(), include=["*.md"]).added) == ["a.md", "drafts/c.md"]
    report = ingest([docs], settings=s, embedder=HashEmbedder(), exclude=["drafts/*"])
    # b.txt is new; drafts/c.md is now excluded, so it left the folder's view and goes.
    assert report.added == ("b.txt",) and report.removed == ("drafts/c.md",) and report.unchanged == ("a.md",)


def test_list_and_remove(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"a.md": "Alpha words.\n", "sub/b.txt": "Beta words.\n", "sub/c.txt": "Gamma.\n"})
    s = settings(tmp_path)
    ingest([docs], settings=s, embedder=HashEmbedder())
    listing = list_index(s.index_dir).to_dict()
    assert [f["path"] for f in listing["files"]] == ["a.md", "sub/b.txt", "sub/c.txt"]
    assert set(listing) >= {"files", "embedder", "dim", "chunks", "bytes_on_disk", "last_ingest"}
    assert all(set(f) >= {"path", "chunks", "pages", "sha256", "ingested_at"} for f in listing["files"])
    assert listing["embedder"] == "test/hash-embedder" and listing["bytes_on_disk"] > 0
    assert remove(["a.md"], s.index_dir) == ["a.md"]
    assert remove([str(docs / "sub")], s.index_dir) == ["sub/b.txt", "sub/c.txt"]  # a folder on disk
    assert list_index(s.index_dir).files == {}
    with pytest.raises(RagError, match="not in the index"):
        remove(["nothing.md"], s.index_dir)


def test_cli_list_and_remove_json(tmp_path: Path):
    docs = folder(tmp_path / "docs", {"a.md": "Alpha words.\n", "b.md": "Beta words.\n"})
    ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    import json

    result = runner.invoke(app, ["list", "--json", "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 0 and [f["path"] for f in json.loads(result.stdout)["files"]] == ["a.md", "b.md"]
    result = runner.invoke(app, ["remove", "b.md", "--json", "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"removed": ["b.md"]}
    result = runner.invoke(app, ["remove", "zzz.md", "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "zzz.md is not in the index" in result.stderr


def test_truncated_pdf_keeps_the_pages_that_survive(tmp_path: Path):
    data = (Path(__file__).resolve().parents[1] / "corpus" / "context-windows.pdf").read_bytes()
    whole, _ = loaders.load(Path(__file__).resolve().parents[1] / "corpus" / "context-windows.pdf", "cw.pdf")
    nearly = tmp_path / "nearly.pdf"
    nearly.write_bytes(data[: len(data) - 200])  # the xref table and trailer are gone
    pages, notes = loaders.load(nearly, "nearly.pdf")
    assert [p.page for p in pages] == [p.page for p in whole]
    assert [p.text for p in pages] == [p.text for p in whole]
    assert any(n.startswith("damaged PDF") for n in notes)
    half = tmp_path / "half.pdf"  # fonts and resources are written last: lost, standard fonts stand in
    half.write_bytes(data[: len(data) // 2])
    pages, notes = loaders.load(half, "half.pdf")
    assert [p.page for p in pages] == [1, 2] and [p.text for p in pages] == [p.text for p in whole[:2]]
    assert notes[0].startswith("damaged PDF")
    with pytest.raises(LoaderError, match="damaged PDF, no page could be read"):
        loaders.load(_written(tmp_path, data[:300]), "start.pdf")  # cut inside the first page


def _written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "start.pdf"
    path.write_bytes(data)
    return path


def test_a_file_that_cannot_be_hashed_is_reported_in_the_loaders_words(tmp_path: Path, monkeypatch):
    """Hashing and loading say the same thing for the same failure (the README's wording)."""
    import rag.ingestion

    real = rag.ingestion._sha256

    def sha256(path: Path) -> str:
        if path.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rag.ingestion, "_sha256", sha256)
    docs = folder(tmp_path / "docs", {"secret.txt": "hidden words\n", "open.txt": "plain words\n"})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert [(f.path, f.reason) for f in report.failed] == [("secret.txt", "permission denied")]
    assert report.added == ("open.txt",)


def test_unsupported_files_are_counted_by_suffix_not_skipped_silently(tmp_path: Path, hash_models):
    docs = folder(tmp_path / "docs", {"a.md": "Alpha words.\n", "plan.dwg": b"\x00\x01", "b.DWG": b"\x02",
                                      "notes": "no suffix, but text", "core": b"\x7fELF\x00\x01",
                                      "drafts/c.xyz": "x", ".hidden.dwg": b"\x03"})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert report.added == ("a.md", "notes")
    assert report.skipped == {"": 1, ".dwg": 2, ".xyz": 1} == report.to_dict()["skipped"]
    want = [("b.DWG", "unsupported file type .dwg"), ("core", "no file type (no suffix) and not plain text"),
            ("drafts/c.xyz", "unsupported file type .xyz"), ("plan.dwg", "unsupported file type .dwg")]
    assert [(f.path, f.reason) for f in report.skipped_files] == want
    assert report.to_dict()["skipped_files"] == [{"path": p, "reason": r} for p, r in want]
    excluded = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder(), exclude=["*.dwg"])
    # What an exclude pattern hides is not "skipped" (globs are case-sensitive: b.DWG stays).
    assert excluded.skipped == {"": 1, ".dwg": 1, ".xyz": 1}
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", str(tmp_path / "cli-idx")])
    assert result.exit_code == 0, result.stderr
    assert "skipped (unsupported)" in result.stdout and "2 .dwg" in result.stdout
    assert "skipped: drafts/c.xyz: unsupported file type .xyz" in result.stderr
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", str(tmp_path / "json-idx"), "--json"])
    assert json.loads(result.stdout)["skipped_files"][1] == {"path": "core", "reason": want[1][1]}


def test_a_parser_crash_on_one_file_fails_that_file_only(tmp_path: Path, monkeypatch):
    """A library's own exception on a malformed file (an int() of a bad attribute, say)
    becomes that file's failure; the rest of the folder is stored."""
    from dataclasses import replace as replaced

    def broken(*args, **kwargs):
        yield from ()
        raise ValueError("invalid literal for int() with base 10: 'x'")

    html_family = loaders._BY_SUFFIX[".html"]
    monkeypatch.setitem(loaders._BY_SUFFIX, ".html", replaced(html_family, read=broken))
    docs = folder(tmp_path / "docs", {"bad.html": "<p>x</p>", "good.md": "Good words here.\n"})
    report = ingest([docs], settings=settings(tmp_path), embedder=HashEmbedder())
    assert report.added == ("good.md",)
    assert [(f.path, f.reason) for f in report.failed] == [
        ("bad.html", "cannot read this HTML file (ValueError: invalid literal for int() with base 10: 'x')")]
