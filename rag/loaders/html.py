"""HTML files: the text a browser would show, with headings kept as Markdown headings
so the chunker splits at them as it does in a Markdown file."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

from ..types import Page
from .text import decode_text, read_bytes, whole_page

KINDS = {".html": "html", ".htm": "html"}

# Not "head": its end tag is optional, so skipping it could swallow the whole body.
_SKIP_TAGS = {"script", "style", "noscript", "template", "title", "svg", "iframe", "object"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "table", "tr", "section", "article", "header",
    "footer", "nav", "aside", "main", "blockquote", "pre", "dd", "dt", "dl", "hr",
    "figure", "figcaption", "form", "body",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> Iterator[Page]:
    """An HTML file's visible text as one page (read whole at any size, unlike plain text)."""
    html = decode_text(read_bytes(path, source), source)
    yield whole_page(source, html_to_text(html), kind, notes)


class _VisibleText(HTMLParser):
    """Collects the text a browser would show; headings become Markdown headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif self._skip:
            return
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif not self._skip and (tag in _HEADINGS or tag in _BLOCK_TAGS):
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"(#+ )\n+", r"\1", text)
    text = re.sub(r"^#+ *$", "", text, flags=re.M)  # an empty <h1></h1>
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
