"""The web page's endpoints of `rag serve` with fake models, over a real uvicorn server:
the static page (open, with its CSP), stored page text around a quote, the original
file (only within its ingested folder), PDF page renders with the quote's boxes,
ingest / re-sync / remove jobs (allowed roots, --read-only) and follow-ups on /v1/ask.
The page itself, in a real browser with the real models, is tests/test_web_e2e.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fakes import EchoGenerator, HashEmbedder, make_folder, settings
from rag.ingestion import ingest
from rag.serve import ServeOptions
from rag.serve.app import create_app
from rag.serve.follower import IndexFollower
from rag.serve.jobs import within
from rag.errors import ConfigError
from test_serve import TOKEN, follower_for, running


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = make_folder(tmp_path / "docs")
    make_pdf(folder / "bees.pdf")
    ingest([folder], settings=settings(tmp_path), embedder=HashEmbedder())
    return folder


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Honeybees communicate the location of flowers through a waggle dance. The angle of the "
                         "dance encodes the direction of the food source, and the duration of the waggle run "
                         "encodes the distance to it.")
    pdf.output(str(path))


def wait_job(url: str, job: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = httpx.get(f"{url}/v1/ingest/{job['id']}", headers=headers).json()
    return job


def test_the_page_loads_without_the_token_and_the_data_needs_it(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path), ServeOptions(token=TOKEN))) as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'data-testid="question"' in page.text
        for name in ("api.js", "render.js", "source.js", "ask.js", "search.js", "library.js", "main.js", "style.css"):
            assert httpx.get(f"{url}/web/{name}").status_code == 200, name
        assert httpx.get(f"{url}/web/..%2Fweb.py").status_code == 404
        for path in ("/v1/page?source=cats.md", "/v1/ingest", "/v1/original?source=cats.md"):
            assert httpx.get(url + path).status_code == 401, path


def test_page_text_around_a_quote(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        text = (docs / "cats.md").read_text(encoding="utf-8")
        start = text.index("Cats eat fish")
        end = start + len("Cats eat fish")
        r = httpx.get(f"{url}/v1/page", params={"source": "cats.md", "start": start, "end": end, "context": 10}).json()
        assert r["text"][start - r["offset"]:end - r["offset"]] == "Cats eat fish"
        assert r["offset"] == start - 10 and r["length"] == len(text)
        bad = httpx.get(f"{url}/v1/page", params={"source": "cats.md", "start": 5, "end": 10 ** 6})
        assert bad.status_code == 422
        assert httpx.get(f"{url}/v1/page", params={"source": "nope.md"}).status_code == 404


def test_the_original_is_served_only_from_its_ingested_folder(tmp_path: Path, docs: Path):
    lone = tmp_path / "lone.md"
    lone.write_text("# Lone\n\nA file given by itself.\n", encoding="utf-8")
    ingest([lone], settings=settings(tmp_path), embedder=HashEmbedder())
    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        r = httpx.get(f"{url}/v1/original", params={"source": "cats.md"})
        assert r.status_code == 200 and r.text.startswith("# Cats")
        assert r.headers["content-security-policy"] == "sandbox" and "attachment" in r.headers["content-disposition"]
        sources = [f["path"] for f in httpx.get(f"{url}/v1/files").json()["files"]]
        lone_source = next(s for s in sources if s.endswith("lone.md"))
        assert httpx.get(f"{url}/v1/original", params={"source": lone_source}).status_code == 403
        assert httpx.get(f"{url}/v1/original", params={"source": "../../etc/passwd"}).status_code == 404


def test_a_pdf_page_renders_and_the_quote_is_boxed(tmp_path: Path, docs: Path):
    import pypdfium2 as pdfium

    with running(create_app(follower_for(tmp_path), ServeOptions())) as url:
        text = httpx.get(f"{url}/v1/page", params={"source": "bees.pdf", "page": 1, "context": 5000}).json()["text"]
        quote = "the duration of the waggle run"
        start = " ".join(text.split()).index(quote)  # one-space text: find the quote's place in the stored text
        start = _position(text, start)
        end = _position(text, " ".join(text.split()).index(quote) + len(quote))
        png = httpx.get(f"{url}/v1/pdf/render", params={"source": "bees.pdf", "page": 1, "scale": 2})
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        boxes = httpx.get(f"{url}/v1/pdf/boxes", params={"source": "bees.pdf", "page": 1, "start": start, "end": end,
                                                         "scale": 2}).json()
        assert httpx.get(f"{url}/v1/pdf/boxes", params={"source": "cats.md", "page": 1, "start": 0,
                                                       "end": 1}).status_code == 422
    span = boxes["spans"][0]
    assert span["matched"] == 1.0 and span["boxes"]
    doc = pdfium.PdfDocument(str(docs / "bees.pdf"))
    page = doc[0]
    height = page.get_height()
    textpage = page.get_textpage()
    seen = ""
    for x0, y0, x1, y1 in span["boxes"]:
        assert 0 <= x0 < x1 <= boxes["width"] and 0 <= y0 < y1 <= boxes["height"]
        seen += textpage.get_text_bounded(x0 / 2, height - y1 / 2, x1 / 2, height - y0 / 2)
    assert "".join(seen.split()) == "".join(quote.split())


def _position(text: str, squeezed: int) -> int:
    """The offset in `text` of offset `squeezed` of its single-spaced form."""
    count = 0
    for i, ch in enumerate(text):
        if count == squeezed:
            return i
        if not (ch.isspace() and i + 1 < len(text) and text[i + 1].isspace()) and not (ch.isspace() and i == 0):
            count += 1
    return len(text)


def test_within_follows_symlinks_and_names_the_roots(tmp_path: Path):
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert within(str(root / "sub"), [str(root)]) == (root / "sub").resolve()
    for bad in (root / "link", root / ".." / "outside", Path("/etc")):
        with pytest.raises(ConfigError, match="allowed: " + str(root)):
            within(str(bad), [str(root)])
    with pytest.raises(ConfigError, match="--allow-root"):
        within(str(root), [])
    with pytest.raises(ConfigError, match="--allow-root .*not a folder"):
        ServeOptions(allow_roots=(str(tmp_path / "missing"),)).check()


def test_ingest_with_progress_lists_failures_then_remove(tmp_path: Path, docs: Path):
    more = tmp_path / "more"
    more.mkdir()
    (more / "owls.md").write_text("# Owls\n\nThe tawny owl nests in hollow oaks.\n", encoding="utf-8")
    (more / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    (more / "data.xyz").write_text("unknown", encoding="utf-8")
    options = ServeOptions(allow_roots=(str(tmp_path),))
    with running(create_app(follower_for(tmp_path), options)) as url:
        refused = httpx.post(f"{url}/v1/ingest", json={"path": "/etc"})
        assert refused.status_code == 403 and "allowed: " + str(tmp_path) in refused.json()["error"]["message"]
        assert httpx.post(f"{url}/v1/ingest", json={"path": str(tmp_path / "nope")}).status_code == 404
        job = wait_job(url, httpx.post(f"{url}/v1/ingest", json={"path": str(more)}).json())
        assert job["state"] == "done" and job["report"]["added"] == 1, job
        listed = httpx.get(f"{url}/v1/ingest").json()
        assert [f["path"] for f in listed["failed"]] == ["broken.pdf"] and listed["failed"][0]["reason"]
        assert listed["skipped"] == {".xyz": 1} and listed["read_only"] is False
        assert "owls.md" in [f["path"] for f in httpx.get(f"{url}/v1/files").json()["files"]]
        job = wait_job(url, httpx.post(f"{url}/v1/remove", json={"source": "owls.md"}).json())
        assert job["state"] == "done" and job["report"]["paths"]["removed"] == ["owls.md"]
        assert "owls.md" not in [f["path"] for f in httpx.get(f"{url}/v1/files").json()["files"]]
        (docs / "cats.md").write_text("# Cats\n\nCats nap on warm windowsills.\n", encoding="utf-8")
        job = wait_job(url, httpx.post(f"{url}/v1/sync").json())
        assert job["state"] == "done" and job["report"]["updated"] >= 1, job
        hits = httpx.post(f"{url}/v1/search", json={"query": "windowsills", "k": 1, "mode": "lexical"}).json()["hits"]
        assert hits[0]["source"] == "cats.md" and "windowsills" in hits[0]["text"]


def test_read_only_refuses_every_write(tmp_path: Path, docs: Path):
    with running(create_app(follower_for(tmp_path), ServeOptions(read_only=True, allow_roots=(str(tmp_path),)))) as url:
        writes = (("/v1/ingest", {"path": str(docs)}), ("/v1/sync", None), ("/v1/remove", {"source": "cats.md"}))
        for path, body in writes:
            r = httpx.post(url + path, json=body)
            assert r.status_code == 403 and "read-only" in r.json()["error"]["message"], path
        assert httpx.get(f"{url}/v1/ingest").json()["read_only"] is True


def test_a_follow_up_on_ask_is_searched_with_the_earlier_question(tmp_path: Path, docs: Path):
    generator = EchoGenerator()
    with running(create_app(follower_for(tmp_path, generator), ServeOptions())) as url:
        history = [{"question": "What do cats eat?", "answer": "Fish and chicken [1].", "answerable": True}]
        r = httpx.post(f"{url}/v1/ask", json={"question": "And how often?", "history": history}, timeout=60)
        assert r.status_code == 200 and r.json()["question"] == "And how often?"
        assert "Fish and chicken" in generator.prompts[-1]  # the earlier turn is in the prompt
        assert r.json()["sources"][0]["source"] == "cats.md"  # searched with the cats question's words
        bad = httpx.post(f"{url}/v1/ask", json={"question": "x", "history": [{"question": ""}]})
        assert bad.status_code == 422
