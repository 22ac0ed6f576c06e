"""The web page of `rag serve` in a real browser (Debian's Chromium, driven by Selenium):
the real command on an ephemeral loopback port over an index built with the real
embedder, answering with the real SmolLM2 through llama.cpp.

One conversation asks two questions (a Markdown answer, then a PDF follow-up), each
citation opened and its highlight compared with the quote the answer stored; the PDF's
boxes are checked against PDFium's own text under them. A refusal, an ingest from the
page with a broken PDF and a hostile Markdown file, and the library follow. The
keyboard, read-only and phone-width checks use fake models (no LLM needed).

With WEB_SCREENSHOTS=1 the screenshots the README shows are written to docs/.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser import chromium, require_browser, set_viewport
from test_serve_e2e import PROJECT, Server, runner

from rag.cli import app

pytestmark = pytest.mark.usefixtures("browser_installed")
QUESTION = "How many entries are in GPT-2's token vocabulary?"
PDF_QUESTION = "What does the duration of the honeybee waggle run encode?"
ANSWER_TIMEOUT = 400
BEES = ("Honeybees tell their sisters where flowers are with a waggle dance performed on the comb. "
        "The angle of the waggle run against the vertical gives the direction of the food source "
        "relative to the sun. The duration of the waggle run encodes the distance to the flowers: "
        "a longer run means a farther source. A strong colony holds about fifty thousand workers in summer.")


@pytest.fixture(scope="module")
def browser_installed() -> None:
    require_browser()


def make_pdf(path: Path) -> None:
    """Two pages, the bees on the second: the page number has to be right too."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Glaciers form where snow accumulates faster than it melts, and they flow downhill "
                         "under their own weight, carving valleys shaped like the letter U.")
    pdf.add_page()
    pdf.multi_cell(0, 8, BEES)
    pdf.output(str(path))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("web")
    docs = root / "docs"
    docs.mkdir()
    (docs / "tokenization.md").write_text((PROJECT / "corpus" / "tokenization.md").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    make_pdf(docs / "honeybees.pdf")
    index = str(root / "index")
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", index, "--quiet"])
    assert result.exit_code == 0, result.stderr
    server = Server(root / "server.log", "--index-dir", index, "--max-tokens", "40", "--allow-root", str(root))
    try:
        yield server, root
    finally:
        assert server.stop() == 0, server.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    d = chromium(1200, 820)
    try:
        yield d
    finally:
        d.quit()


def by(testid: str) -> tuple[str, str]:
    return ("css selector", f'[data-testid="{testid}"]')


def wait(driver: Any, check: Any, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(check)


def ask_on_page(driver: Any, question: str) -> dict[str, Any]:
    """Type the question, press Enter, wait for the answer; the stored answer object."""
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(*by("answer")))
    driver.find_element(*by("question")).send_keys(question, Keys.ENTER)
    wait(driver, lambda d: len(d.find_elements("css selector", '[data-testid="answer"]:not(.draft)')) > before,
         ANSWER_TIMEOUT)
    stored = driver.execute_script("return JSON.parse(localStorage.getItem('rag.conversations'))")
    turn = stored[-1]["turns"][-1]
    assert turn["question"] == question
    return turn["answer"]


def quote_of(answer: dict[str, Any], source: str, start: int, end: int) -> str:
    quotes = [q for s in answer["sentences"] for q in s["quotes"]]
    quotes += [c["quote"] for c in answer["citations"] if c["quote"]]
    found = [q["text"] for q in quotes if (q["source"], q["start"], q["end"]) == (source, start, end)]
    assert found, (source, start, end, quotes)
    return found[0]


def open_citation(driver: Any, source: str) -> tuple[Any, str]:
    cites = [c for c in driver.find_elements(*by("citation")) if c.get_attribute("data-source") == source]
    assert cites, f"no citation of {source} on the page"
    cite = cites[-1]
    cite.click()
    wait(driver, lambda d: d.find_element(*by("source")).is_displayed())
    return cite, cite.get_attribute("data-start") + "-" + cite.get_attribute("data-end")


def highlight_text(driver: Any) -> str:
    mark = wait(driver, lambda d: d.find_elements(*by("quote-highlight")))[0]
    return mark.get_attribute("textContent")


def squeeze(text: str) -> str:
    return re.sub(r"[\s\-\u00ad]+", "", text).casefold()


def test_ask_then_check_each_citation_in_place(site: tuple[Server, Path], driver: Any, tmp_path: Path):
    from selenium.webdriver.common.keys import Keys

    server, root = site
    driver.get(server.url + "/")
    answer = ask_on_page(driver, QUESTION)
    assert answer["answerable"], answer
    node = driver.find_elements(*by("answer"))[-1]
    assert int(node.get_attribute("data-ttft-ms")) > 0  # tokens were shown before the answer came
    cite, span = open_citation(driver, "tokenization.md")
    start, end = map(int, span.split("-"))
    assert highlight_text(driver) == quote_of(answer, "tokenization.md", start, end)
    meta = driver.find_element("id", "source-meta").text
    assert "tokenization.md" in meta and f"{start}–{end}" in meta
    driver.find_element("tag name", "body").send_keys(Keys.ESCAPE)  # Esc closes the source view
    wait(driver, lambda d: not d.find_element(*by("source")).is_displayed())

    # A follow-up in the same conversation, answered from the PDF's second page.
    answer = ask_on_page(driver, PDF_QUESTION)
    assert answer["answerable"], answer
    stored = driver.execute_script("return JSON.parse(localStorage.getItem('rag.conversations'))")
    assert len(stored[-1]["turns"]) == 2
    cite, span = open_citation(driver, "honeybees.pdf")
    start, end = map(int, span.split("-"))
    quote = quote_of(answer, "honeybees.pdf", start, end)
    boxes = wait(driver, lambda d: d.find_elements(*by("quote-box")), 60)
    frame = driver.find_element(*by("pdf-page"))
    width, height = int(frame.get_attribute("data-width")), int(frame.get_attribute("data-height"))
    check_boxes(root / "docs" / "honeybees.pdf", 2, [list(map(float, b.get_attribute("data-box").split(",")))
                                                     for b in boxes], width, height, quote)
    time.sleep(0.5)  # the image decoded and the box scrolled into view
    screenshot(driver, "web-answer-pdf.png", tmp_path)
    driver.find_element("id", "view-toggle").click()  # to the text view
    wait(driver, lambda d: d.find_element("id", "text-view").is_displayed())
    assert highlight_text(driver) == quote


def check_boxes(pdf: Path, number: int, boxes: list[list[float]], width: int, height: int, quote: str) -> None:
    """Every box lies inside the page image, and PDFium's text under the boxes, in
    order, is the quote's (spaces and hyphens aside)."""
    import pypdfium2 as pdfium

    assert boxes
    document = pdfium.PdfDocument(str(pdf))
    page = document[number - 1]
    textpage = page.get_textpage()
    try:
        scale = width / page.get_width()
        under = ""
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (x0, y0, x1, y1, width, height)
            under += textpage.get_text_bounded(x0 / scale, page.get_height() - y1 / scale, x1 / scale,
                                               page.get_height() - y0 / scale)
    finally:
        textpage.close()
        page.close()
        document.close()
    assert squeeze(under) == squeeze(quote), (under, quote)


def screenshot(driver: Any, name: str, tmp_path: Path) -> None:
    """A small PNG (a 64-colour palette) in tmp_path, and in docs/ with WEB_SCREENSHOTS=1."""
    from PIL import Image

    raw = tmp_path / ("raw-" + name)
    driver.save_screenshot(str(raw))
    small = Image.open(raw).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    targets = [tmp_path / name] + ([PROJECT / "docs" / name] if os.environ.get("WEB_SCREENSHOTS") == "1" else [])
    for target in targets:
        small.save(target, optimize=True)


def test_a_refusal_says_why_and_lists_the_closest_passages(site: tuple[Server, Path], driver: Any):
    server, _ = site
    driver.get(server.url + "/")
    driver.find_element("id", "new-conversation").click()
    answer = ask_on_page(driver, "What is the capital of Peru?")
    assert not answer["answerable"] and answer["abstain_reason"]
    node = driver.find_elements(*by("answer"))[-1]
    assert node.find_element(*by("refusal-reason")).text.startswith("Why: ")
    assert node.find_elements(*by("hit")), "no closest passages listed"


HOSTILE = ('# Notes <script>window.__pwned = "script"</script>\n\n'
           'Quokkas live on Rottnest Island. <img src=x onerror="window.__pwned = \'onerror\'"> '
           'Ça coûte 5 € — naïve Zürich, Ωμέγα, Привет.\n')


def test_ingest_from_the_page_lists_the_failed_file_and_runs_no_document_markup(
        site: tuple[Server, Path], driver: Any, tmp_path: Path):
    from selenium.webdriver.common.keys import Keys

    server, root = site
    inbox = root / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntruncated")
    (inbox / "quokkas.md").write_text(HOSTILE, encoding="utf-8")
    driver.get(server.url + "/")
    driver.find_element("css selector", '[data-tab="library"]').click()
    wait(driver, lambda d: d.find_elements(*by("library-file")))
    outside = driver.find_element(*by("ingest-path"))
    outside.send_keys("/etc", Keys.ENTER)  # not under --allow-root: refused
    wait(driver, lambda d: d.find_element(*by("ingest-progress")).get_attribute("data-state") == "refused")
    outside.clear()
    outside.send_keys(str(inbox), Keys.ENTER)
    wait(driver, lambda d: d.find_element(*by("ingest-progress")).get_attribute("data-state") == "done", 300)
    failed = wait(driver, lambda d: d.find_elements(*by("failed-file")))
    assert len(failed) == 1 and failed[0].text.startswith("broken.pdf: ") and len(failed[0].text) > 20
    files = [r.find_element("css selector", ".path").text for r in driver.find_elements(*by("library-file"))]
    assert "quokkas.md" in files and "honeybees.pdf" in files
    library = driver.find_element(*by("library"))
    assert "all-MiniLM-L6-v2" in library.text and "tokens, overlap" in library.text
    screenshot(driver, "web-library.png", tmp_path)

    driver.find_element("css selector", '[data-tab="search"]').click()
    driver.find_element(*by("search-query")).send_keys("Where do quokkas live?", Keys.ENTER)
    hits = wait(driver, lambda d: [h for h in d.find_elements(*by("hit")) if "quokkas.md" in h.text])
    assert "<img src=x onerror=" in hits[0].text
    hits[0].click()
    shown = highlight_text(driver)
    assert "onerror=" in shown and "Zürich, Ωμέγα, Привет" in shown
    page = driver.find_element("id", "text-view").get_attribute("textContent")
    assert "<script>window.__pwned" in page  # shown as text
    time.sleep(0.5)
    assert driver.execute_script("return window.__pwned") is None
    planted = "return document.querySelectorAll('img[src=\"x\"], main script, aside script').length"
    assert driver.execute_script(planted) == 0
    logs = json.dumps(driver.get_log("browser"))
    assert "Content Security Policy" not in logs, logs  # nothing even tried to run


# --- fake models: the keyboard, --read-only, a phone-width window --------------------------------


@pytest.fixture
def fake_site(tmp_path: Path) -> Iterator[str]:
    from fakes import HashEmbedder, make_folder, settings
    from rag.ingestion import ingest
    from rag.serve import ServeOptions
    from rag.serve.app import create_app
    from test_serve import follower_for, running

    ingest([make_folder(tmp_path / "docs")], settings=settings(tmp_path), embedder=HashEmbedder())
    with running(create_app(follower_for(tmp_path), ServeOptions(read_only=True))) as url:
        yield url


def test_keyboard_read_only_and_a_phone_width_window(fake_site: str, driver: Any):
    from selenium.webdriver.common.keys import Keys

    set_viewport(driver, 390, 800)
    try:
        driver.get(fake_site + "/")
        driver.execute_script("localStorage.clear()")
        driver.get(fake_site + "/")
        ask_on_page(driver, "What do cats eat?")  # typed and sent with Enter alone
        driver.find_element(*by("citation")).send_keys(Keys.ENTER)  # a citation is a button: Enter opens it
        assert highlight_text(driver) == "Cats eat fish and chicken twice a day."
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px window"
        driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        wait(driver, lambda d: not d.find_element(*by("source")).is_displayed())
        assert driver.switch_to.active_element.get_attribute("data-testid") == "citation"  # focus went back
        driver.find_element("css selector", '[data-tab="library"]').click()
        wait(driver, lambda d: d.find_elements(*by("library-file")))
        assert not driver.find_element("id", "writes").is_displayed()  # read-only: no ingest, re-sync
        assert not driver.find_elements(*by("remove"))  # nor remove
    finally:
        set_viewport(driver, 1200, 820)


def test_the_answer_span_is_emphasised_inside_its_quote(fake_site: str, driver: Any):
    """An answer with `answer_span` (the located answer, when the server gives one): the
    span is emphasised within the highlighted quote. Stored as a past turn, so the page
    renders it from localStorage as it does after a reload."""
    from fakes import TEXTS

    text = TEXTS["cats.md"]
    quote = "Cats eat fish and chicken twice a day."
    start = text.index(quote)
    span = {"text": "fish and chicken", "source": "cats.md", "page": None, "score": 0.9,
            "start": start + quote.index("fish"), "end": start + quote.index("fish") + len("fish and chicken")}
    q = {"id": 1, "source": "cats.md", "page": None, "start": start, "end": start + len(quote), "text": quote,
         "support": 1.0}
    answer = {"question": "What do cats eat?", "answer": "Cats eat fish and chicken [1].", "answerable": True,
              "citations": [{"id": 1, "source": "cats.md", "page": None, "quote": q}], "sources": [], "hits": [],
              "sentences": [{"text": "Cats eat fish and chicken [1].", "citations": [1], "supported": True,
                             "quotes": [q]}], "answer_span": span}
    conversation = [{"id": "c1", "title": "cats", "created": 0, "turns": [{"question": "What do cats eat?",
                                                                          "answer": answer}]}]
    driver.get(fake_site + "/")
    driver.execute_script("localStorage.setItem('rag.conversations', arguments[0]);"
                          "localStorage.setItem('rag.conversation', 'c1')", json.dumps(conversation))
    driver.get(fake_site + "/")
    wait(driver, lambda d: d.find_elements(*by("citation")))[0].click()
    assert highlight_text(driver) == quote
    assert driver.find_element(*by("answer-span")).get_attribute("textContent") == "fish and chicken"
    del answer["answer_span"]  # an answer without one (a server before the reading issue) renders as before
    conversation[0]["turns"][0]["answer"] = answer
    driver.execute_script("localStorage.setItem('rag.conversations', arguments[0])", json.dumps(conversation))
    driver.get(fake_site + "/")
    wait(driver, lambda d: d.find_elements(*by("citation")))[0].click()
    assert highlight_text(driver) == quote and not driver.find_elements(*by("answer-span"))
