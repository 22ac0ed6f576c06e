"""Chunking: spans point into the page, limits hold, sections are covered, headings are tracked."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_page, sections
from rag.loaders import load
from rag.types import Chunk, Page

DATA = Path(__file__).resolve().parent / "data"


def words(texts):
    """Word-count tokenizer, the shape of Embedder.count_tokens."""
    return [len(t.split()) for t in texts]


def char_tokens(texts):
    """A tokenizer where long words cost more (one token per 10 characters of a word)."""
    return [sum(math.ceil(len(w) / 10) for w in t.split()) for t in texts]


def check_chunks(page: Page, chunks: list[Chunk], count, max_tokens: int, overlap: int) -> None:
    text = page.text
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text.strip(), "empty chunk"
        real = count([c.embed_text()])[0]
        assert real <= max_tokens, (real, c)
        assert c.tokens == real
    secs = sections(text, page.kind)
    for sec in secs:
        inside = [c for c in chunks if sec.start <= c.start and c.end <= sec.end]
        covered = set()
        for c in inside:
            covered.update(range(c.start, c.end))
        missing = [i for i in range(sec.start, sec.end) if not text[i].isspace() and i not in covered]
        assert not missing, f"section {sec.heading!r}: characters {missing[:10]} are in no chunk"
        for prev, nxt in zip(inside, inside[1:]):
            assert nxt.start > prev.start and nxt.end > prev.end
            if nxt.start < prev.end:
                shared = count([text[nxt.start : prev.end]])[0]
                assert shared <= overlap, (shared, prev, nxt)
    # Every chunk lies inside exactly one section.
    for c in chunks:
        assert sum(s.start <= c.start and c.end <= s.end for s in secs) == 1, c


def prose(n_paragraphs: int, sentences: int, words_per_sentence: int) -> str:
    paras = []
    k = 0
    for p in range(n_paragraphs):
        sents = []
        for s in range(sentences):
            ws = [f"word{k + i}" for i in range(words_per_sentence)]
            k += words_per_sentence
            sents.append(f"Sentence{p}x{s} " + " ".join(ws) + ".")
        paras.append(" ".join(sents))
    return "\n\n".join(paras) + "\n"


def test_spans_limit_overlap_and_coverage_on_prose():
    page = Page("doc.txt", None, prose(6, 7, 9), "text")
    chunks = chunk_page(page, words, 40, 12)
    assert len(chunks) > 5
    check_chunks(page, chunks, words, 40, 12)
    # Overlap is actually used: some consecutive chunks share a sentence.
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))


def test_zero_overlap_gives_disjoint_chunks():
    page = Page("doc.txt", None, prose(4, 6, 8), "text")
    chunks = chunk_page(page, words, 30, 0)
    check_chunks(page, chunks, words, 30, 0)
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:]))


def test_chunk_keeps_page_number_and_source():
    page = Page("paper.pdf", 3, prose(2, 3, 5), "pdf")
    chunks = chunk_page(page, words, 20, 4)
    assert chunks and all(c.page == 3 and c.source == "paper.pdf" for c in chunks)


def test_markdown_heading_paths_and_fenced_code():
    (page,), _ = load(DATA / "nested.md", "nested.md")
    chunks = chunk_page(page, words, 100, 10)
    check_chunks(page, chunks, words, 100, 10)
    by_heading = {c.heading: c.text for c in chunks}
    assert set(by_heading) == {"Alpha", "Alpha > Beta", "Alpha > Beta > Gamma", "Alpha > Delta"}
    assert "Intro text under alpha." in by_heading["Alpha"]
    # The "# not a heading" line inside the fence stays in Beta's body.
    assert "# not a heading" in by_heading["Alpha > Beta"]
    assert "Text after the code in beta." in by_heading["Alpha > Beta"]
    assert not any("not a heading" in c.heading for c in chunks)
    # Heading lines are not part of any chunk's text; only the fenced comment is.
    hash_lines = [line for c in chunks for line in c.text.splitlines() if line.startswith("#")]
    assert hash_lines == ["# not a heading"]


def test_heading_is_embedded_with_the_text():
    (page,), _ = load(DATA / "nested.md", "nested.md")
    gamma = next(c for c in chunk_page(page, words, 100, 10) if c.heading.endswith("Gamma"))
    assert gamma.embed_text() == "Alpha > Beta > Gamma\nGamma body."
    assert gamma.tokens == len("Alpha > Beta > Gamma Gamma body.".split())


def test_tilde_fence_hides_headings_too():
    text = "# Top\n\nBody.\n\n~~~\n## fake\n~~~\n\nMore body.\n"
    assert [s.heading for s in sections(text, "markdown")] == ["Top"]


def test_rst_over_and_underlined_titles():
    (page,), _ = load(DATA / "titles.rst", "titles.rst")
    chunks = chunk_page(page, words, 100, 10)
    check_chunks(page, chunks, words, 100, 10)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Main Title", "Intro under main title."),
        ("Main Title > Section One", "Body of section one."),
        ("Main Title > Section One > Sub Section", "Body of the sub section."),
        ("Main Title > Section Two", "Body of section two."),
    ]
    assert not any("===" in c.text or "---" in c.text for c in chunks)


def test_rst_underline_shorter_than_title_is_not_a_title():
    text = "Not a title at all\n===\n\nBody.\n"
    assert [s.heading for s in sections(text, "rst")] == [""]


def test_html_derived_headings():
    (page,), _ = load(DATA / "page.html", "page.html")
    chunks = chunk_page(page, words, 100, 10)
    check_chunks(page, chunks, words, 100, 10)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Main Heading", "First paragraph about café culture."),
        ("Main Heading > Sub Heading", "Second paragraph with bold words."),
    ]


def test_plain_text_has_no_headings():
    text = "# looks like a heading\n\nBut this is a .txt file.\n"
    chunks = chunk_page(Page("a.txt", None, text, "text"), words, 50, 5)
    assert [c.heading for c in chunks] == [""]
    assert chunks[0].text == text.strip()


def test_long_sentence_is_cut_between_words():
    text = " ".join(f"w{i}" for i in range(500)) + "."
    page = Page("a.txt", None, text, "text")
    chunks = chunk_page(page, words, 64, 0)
    check_chunks(page, chunks, words, 64, 0)
    assert len(chunks) >= 500 // 64
    # Cuts fall between words, never inside one.
    for c in chunks:
        assert c.start == 0 or text[c.start - 1] == " "
        assert c.end == len(text) or text[c.end] == " "


def test_single_5000_character_word_is_split_under_the_limit():
    word = "x" * 5000
    for text in (word, f"Before it. {word} After it.", f"# Head\n\n{word}\n"):
        page = Page("a.md", None, text, "markdown")
        chunks = chunk_page(page, char_tokens, 64, 8)
        check_chunks(page, chunks, char_tokens, 64, 8)
        assert len(chunks) >= 5000 // 640
        assert "".join(c.text for c in chunks if "x" in c.text).count("x") >= 5000


def test_runaway_heading_is_dropped_not_overflowing():
    text = "# " + " ".join(f"h{i}" for i in range(40)) + "\n\nShort body here.\n"
    page = Page("a.md", None, text, "markdown")
    chunks = chunk_page(page, words, 32, 4)
    check_chunks(page, chunks, words, 32, 4)
    assert [c.heading for c in chunks] == [""]


def test_blank_page_gives_no_chunks():
    assert chunk_page(Page("a.txt", None, " \n\n\t\n", "text"), words, 32, 4) == []


# --- property test -----------------------------------------------------------

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=12)
_long_word = st.text(alphabet="abcdefghij", min_size=30, max_size=400)


@st.composite
def sentence(draw) -> str:
    ws = draw(st.lists(st.one_of(_word, _word, _word, _word, _word, _long_word), min_size=1, max_size=40))
    first = ws[0][0].upper() + ws[0][1:]
    return " ".join([first, *ws[1:]]) + draw(st.sampled_from([".", "!", "?", ".", ""]))


@st.composite
def document(draw) -> tuple[str, str]:
    kind = draw(st.sampled_from(["text", "markdown", "rst"]))
    blocks = []
    for _ in range(draw(st.integers(1, 8))):
        choice = draw(st.integers(0, 5))
        if choice == 0 and kind == "markdown":
            blocks.append("#" * draw(st.integers(1, 4)) + " " + draw(_word))
        elif choice == 0 and kind == "rst":
            title = draw(_word)
            blocks.append(title + "\n" + draw(st.sampled_from("=-~")) * len(title))
        elif choice == 1:
            items = draw(st.lists(sentence(), min_size=1, max_size=4))
            blocks.append("\n".join("- " + s for s in items))
        else:
            sents = draw(st.lists(sentence(), min_size=1, max_size=8))
            seps = draw(st.lists(st.sampled_from([" ", "  ", "\n", " \t"]), min_size=len(sents), max_size=len(sents)))
            blocks.append("".join(s + sep for s, sep in zip(sents, seps)).rstrip())
    gaps = draw(st.lists(st.sampled_from(["\n\n", "\n\n\n", "\n \n"]), min_size=len(blocks), max_size=len(blocks)))
    return kind, "".join(b + g for b, g in zip(blocks, gaps))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=document(), max_tokens=st.integers(16, 80), overlap_frac=st.floats(0, 0.5), by_chars=st.booleans())
def test_property_spans_limit_coverage(doc, max_tokens, overlap_frac, by_chars):
    kind, text = doc
    overlap = int(max_tokens * overlap_frac)
    count = char_tokens if by_chars else words
    page = Page("p", None, text, kind)
    chunks = chunk_page(page, count, max_tokens, overlap)
    check_chunks(page, chunks, count, max_tokens, overlap)
    if text.strip() and sections(text, kind):
        assert chunks
