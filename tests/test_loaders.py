"""Loaders: text decoding, visible HTML text, and real-world PDFs from the shared data."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from conftest import DATA, PROJECT, shared
from made_files import damaged_encrypt, encrypted_pdf
from rag.errors import LoaderError
from rag.loaders import decode_text, html_to_text, is_supported, load


def load_one(path: Path, source: str | None = None, passwords=()):
    pages, warnings = load(path, source or path.name, passwords)
    return pages, warnings


# --- decoding ----------------------------------------------------------------

def test_utf8_non_ascii_kept_exactly():
    (page,), warnings = load_one(DATA / "utf8.txt")
    raw = (DATA / "utf8.txt").read_bytes().decode("utf-8")
    assert page.text == raw
    assert "café" in page.text and "naïve" in page.text and "😀" in page.text
    assert "Ã" not in page.text and "\ufffd" not in page.text
    assert page.kind == "text" and page.page is None and page.source == "utf8.txt"
    assert warnings == []


def test_utf8_with_bom_is_stripped():
    assert (DATA / "utf8-bom.txt").read_bytes().startswith(codecs.BOM_UTF8)
    (page,), _ = load_one(DATA / "utf8-bom.txt")
    assert page.text == "BOM first line: café.\n"
    assert not page.text.startswith("\ufeff")


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("Grüße, café 😀\n".encode("utf-16"))
    (page,), _ = load_one(path)
    assert page.text == "Grüße, café 😀\n"


def test_cp1252_fallback():
    (page,), _ = load_one(DATA / "cp1252.txt")
    assert page.text == "Un café crème coûte 3 € au comptoir; naïve question.\n"


def test_latin1_bytes_written_here(tmp_path):
    path = tmp_path / "latin1.md"
    path.write_bytes("# Menü\n\nUn café à la carte, s'il vous plaît.\n".encode("latin-1"))
    (page,), _ = load_one(path)
    assert "café" in page.text and "Menü" in page.text and "plaît" in page.text
    assert page.kind == "markdown"


def test_long_utf8_file_is_never_reread_as_cp1252():
    # The simonw/llm bug: a latin-1 fallback overwrote a good UTF-8 read.
    data = ("café naïve 😀 " * 2000).encode("utf-8")
    text = decode_text(data, "x")
    assert text.startswith("café naïve 😀")
    assert "Ã" not in text


def test_nul_bytes_are_binary_and_name_the_file():
    with pytest.raises(LoaderError) as info:
        load_one(DATA / "binary.txt", "sub/binary.txt")
    assert info.value.path == "sub/binary.txt"
    assert "sub/binary.txt" in str(info.value)
    assert "binary" in info.value.reason


def test_empty_file_is_an_error():
    with pytest.raises(LoaderError) as info:
        load_one(DATA / "empty.txt")
    assert info.value.path == "empty.txt"
    assert "empty" in info.value.reason


def test_whitespace_only_file_is_an_error(tmp_path):
    path = tmp_path / "blank.md"
    path.write_text(" \n\n\t \n", encoding="utf-8")
    with pytest.raises(LoaderError, match="empty"):
        load_one(path)


def test_unsupported_suffix_and_missing_file(tmp_path):
    with pytest.raises(LoaderError, match="unsupported"):
        load_one(tmp_path / "a.dwg")
    with pytest.raises(LoaderError) as info:
        load_one(tmp_path / "gone.txt")
    assert info.value.path == "gone.txt"
    assert is_supported(Path("A.PDF")) and is_supported(Path("x.Markdown"))
    assert not is_supported(Path("x.dwg"))


# --- HTML --------------------------------------------------------------------

def test_html_visible_text_only():
    (page,), _ = load_one(DATA / "page.html")
    text = page.text
    assert page.kind == "html"
    for hidden in ("Page Title Should Vanish", "secretScript", "do not index", "inline script text",
                   "color: red", "hidden-style-rule", "Enable JavaScript"):
        assert hidden not in text
    lines = text.splitlines()
    assert "# Main Heading" in lines
    assert "## Sub Heading" in lines
    assert "First paragraph about café culture." in lines
    assert "Second paragraph with bold words." in lines
    assert "<" not in text and "&eacute;" not in text


def test_html_block_tags_separate_inline_tags_join():
    text = html_to_text("<div>one</div><div>two <i>three</i></div><p>a<br>b</p>")
    assert text == "one\n\ntwo three\n\na\nb\n"


def test_html_with_only_script_is_empty(tmp_path):
    path = tmp_path / "s.html"
    path.write_text("<html><head><title>T</title></head><body><script>x=1</script></body></html>")
    with pytest.raises(LoaderError, match="empty"):
        load_one(path)


# --- PDF ---------------------------------------------------------------------

def test_multipage_pdf_has_one_based_pages():
    path = PROJECT / "corpus" / "context-windows.pdf"
    assert path.is_file()
    pages, warnings = load_one(path, "context-windows.pdf")
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert all(p.kind == "pdf" and p.source == "context-windows.pdf" and p.text.strip() for p in pages)
    assert "Context Windows" in pages[0].text
    assert warnings == []


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128", "RC4-40"])
def test_made_encrypted_pdf_needs_its_password(tmp_path, algorithm):
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf("secret", algorithm=algorithm))
    with pytest.raises(LoaderError, match="needs a password"):
        load_one(path)
    with pytest.raises(LoaderError, match="do not open it"):
        load_one(path, passwords=["wrong"])
    pages, _ = load_one(path, passwords=["wrong", "secret"])
    assert [p.page for p in pages] == [1] and "owls hunt" in pages[0].text


@pytest.mark.parametrize("version", [b"0", b"9"])
def test_damaged_encrypt_dictionary_is_the_files_failure(tmp_path, version):
    # pypdf raises NotImplementedError for these while opening the file, before any page.
    path = tmp_path / "odd.pdf"
    path.write_bytes(damaged_encrypt(version))
    with pytest.raises(LoaderError) as info:
        load_one(path, passwords=["pw"])
    want = f"PDF uses something pypdf cannot read (Encryption V={version.decode()} NOT supported)"
    assert info.value.path == "odd.pdf" and info.value.reason == want


@pytest.mark.shared_data
def test_encrypted_pdf_needs_password():
    path = shared("pdfs", "sf-libreoffice-writer-password.pdf")
    with pytest.raises(LoaderError) as info:
        load_one(path)
    assert "password" in info.value.reason
    with pytest.raises(LoaderError, match="password"):
        load_one(path, passwords=["wrong"])
    pages, _ = load_one(path, passwords=["wrong", "openpassword"])
    assert pages and "Lorem ipsum" in pages[0].text
    assert pages[0].page == 1


@pytest.mark.shared_data
def test_rc4_40_pdf_opens_with_user_password():
    path = shared("pdfs", "pm-rc4-40.pdf")
    with pytest.raises(LoaderError, match="password"):
        load_one(path)
    pages, _ = load_one(path, passwords=["foo"])
    assert "Secret" in "".join(p.text for p in pages)


@pytest.mark.shared_data
def test_scanned_pdf_has_no_extractable_text():
    with pytest.raises(LoaderError) as info:
        load_one(shared("pdfs", "sf-imagemagick-CCITTFaxDecode.pdf"))
    assert "no extractable text" in info.value.reason


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["pp-issue-297.pdf", "pm-zen_of_python_corrupted.pdf"])
def test_damaged_pdf_loads_pages_or_raises_loader_error(name):
    path = shared("pdfs", name)
    try:
        pages, warnings = load_one(path)
    except LoaderError as exc:
        assert exc.path == name and exc.reason
    else:
        assert pages and all(p.text.strip() and p.page >= 1 for p in pages)
        assert all(isinstance(w, str) for w in warnings)


@pytest.mark.shared_data
def test_corrupted_zen_pdf_text_is_recovered():
    pages, _ = load_one(shared("pdfs", "pm-zen_of_python_corrupted.pdf"))
    assert "Beautiful is better than ugly." in pages[0].text


@pytest.mark.parametrize("content", [b"", b"%PDF-1.4\n", b"this is not a pdf at all", b"%PDF-1.7\n1 0 obj\n<<"])
def test_garbage_pdf_raises_loader_error(tmp_path, content):
    path = tmp_path / "bad.pdf"
    path.write_bytes(content)
    with pytest.raises(LoaderError) as info:
        load_one(path)
    assert info.value.path == "bad.pdf"


def test_truncated_real_pdf_raises_loader_error_or_loads(tmp_path):
    data = (PROJECT / "corpus" / "context-windows.pdf").read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 2])
    try:
        pages, _ = load_one(path)
    except LoaderError as exc:
        assert exc.path == "cut.pdf"
    else:
        assert all(p.text.strip() for p in pages)


def test_html_without_closing_head_keeps_its_body():
    from rag.loaders import html_to_text

    text = html_to_text("<html><head><title>T</title><body><h1>Hello</h1><p>Body text here.</p></body></html>")
    assert "# Hello" in text and "Body text here." in text and "T\n" not in text


def test_long_cp1252_file_keeps_its_accents():
    from rag.loaders import decode_text

    assert decode_text(("a" * 3000 + " café ").encode("cp1252")).endswith(" café ")
    # Real UTF-8 with one stray byte stays UTF-8.
    assert decode_text("naïve café ".encode() + b"\xff").startswith("naïve café")
