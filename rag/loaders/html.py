"""HTML files: the text a browser would show, with headings kept as Markdown headings
so the chunker splits at them as it does in a Markdown file, and without the page's
furniture (navigation bars, banners, footers, sidebars) that would otherwise come back
in answers."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

from ..types import Page
from .cleanup import drop_nav_lines
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


# Page furniture a reader skips: navigation, banners and footers, by element, by ARIA
# role or by class/id (Sphinx's "related" bars and sidebar, Texinfo's "header" and
# "nav-panel", the "¶" of "headerlink"). A <header> or <footer> inside <article> or
# <main> is the article's own (its title, its byline) and is kept.
_FURNITURE_TAGS = {"nav"}
_PAGE_EDGE_TAGS = {"header", "footer"}
_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "search", "menubar", "menu"}
_FURNITURE_NAMES = {
    "nav", "navbar", "navigation", "nav-panel", "navheader", "navfooter", "breadcrumb", "breadcrumbs", "menu",
    "sidebar", "sphinxsidebar", "sphinxsidebarwrapper", "related", "header", "footer", "site-header",
    "site-footer", "headerlink", "skip-link", "toc-backref", "mw-navigation", "mw-footer",
}
_CONTENT_TAGS = {"article", "main"}
_OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}  # end tags HTML lets authors leave out


def _is_furniture(tag: str, attrs: list[tuple[str, str | None]], in_content: bool) -> bool:
    if tag in _FURNITURE_TAGS or (tag in _PAGE_EDGE_TAGS and not in_content):
        return True
    values = {name: (value or "").lower() for name, value in attrs}
    if values.get("role", "") in _FURNITURE_ROLES and not (in_content and tag in _PAGE_EDGE_TAGS):
        return True
    names = set(values.get("class", "").split()) | {values.get("id", "")}
    return bool(names & _FURNITURE_NAMES)


class _VisibleText(HTMLParser):
    """Collects the text a browser would show, furniture aside; headings become Markdown headings."""

    def __init__(self, drop_furniture: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._drop = drop_furniture
        self._furniture: list[str] = []  # the tag of the furniture element being skipped, nested same tags
        self._content = 0  # depth in <article>/<main>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._furniture and tag == self._furniture[0] and tag in _OPTIONAL_END:
            self._furniture = []  # "<li class=nav>a<li>b": the second <li> ends the first
        if self._furniture:
            if tag == self._furniture[0]:
                self._furniture.append(tag)
            return
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif self._skip:
            return
        elif self._drop and _is_furniture(tag, attrs, self._content > 0):
            self._furniture.append(tag)
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK_TAGS:
            self._content += tag in _CONTENT_TAGS
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if self._furniture:
            if tag == self._furniture[0]:
                self._furniture.pop()
            return
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif not self._skip and (tag in _HEADINGS or tag in _BLOCK_TAGS):
            self._content = max(0, self._content - (tag in _CONTENT_TAGS))
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._furniture:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of a page without its navigation, banners and footers (and the
    Texinfo "Next: ... Previous: ... Up: ..." lines); when that leaves nothing (a page
    that is all navigation, or furniture left unclosed), the whole visible text."""
    text = drop_nav_lines(_visible(html, drop_furniture=True))
    return text if text.strip() else _visible(html, drop_furniture=False)


def _visible(html: str, drop_furniture: bool) -> str:
    parser = _VisibleText(drop_furniture)
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"(#+ )\n+", r"\1", text)
    text = re.sub(r"^#+ *$", "", text, flags=re.M)  # an empty <h1></h1>
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
