"""Text that reads as the document, not as its markup or its layout: pure functions the
text and HTML loaders apply before a Page is made (so chunk spans and quotes index into
the cleaned text), as rag/loaders/pdf_text.py does for PDFs.

- Navigation lines: Texinfo manuals (info files and their HTML) start each node with
  "Next: X, Previous: Y, Up: Z"; a line made of two or more of those labels goes.
- Sphinx markup in reStructuredText (and in the .rst.txt sources Sphinx ships):
  file-wide fields such as `:orphan:`, directives that only steer the build
  (`.. toctree::` with its entries, `.. index::`, `.. highlight::`, ...), labels
  (`.. _target:`) and substitution definitions go; a role keeps its text
  (":ref:`the guide <guide>`" -> "the guide", ":func:`~os.path.join`" -> "os.path.join");
  an admonition keeps its body under its name ("Note: ...").
- Words hyphenated at a line end (man pages, fixed-width text: "informa-\\n  tion") are
  joined, but only when the joined word is written elsewhere in the same document: a
  plain text file has no typesetter, so a line-end hyphen is often meant ("well-\\nknown").

Large text files read in segments (rag/loaders/text.py) are stored as they are, so their
pages stay byte-for-byte slices of the file.
"""

from __future__ import annotations

import re
from collections import Counter

_NAV_LABEL = r"(?:Next|Previous|Prev|Up|Forward|Back|Contents|Index)"
_NAV_LINE = re.compile(rf"^[ \t]*(?:\*[ \t]*)?{_NAV_LABEL}:[^\n]*?\b{_NAV_LABEL}:[^\n]*\n?", re.M)
# Not the roles whose text is markup rather than words (:math: keeps its formula anyway).
_ROLE = re.compile(r"(?<![\w`]):(?:[\w.+-]+:)*[\w.+-]+:`([^`\n]+)`")
_FIELD_LINE = re.compile(r"[ \t]*:[\w-]+:(?:[ \t].*)?")
_BUILD_DIRECTIVES = (
    "toctree", "index", "highlight", "currentmodule", "module", "moduleauthor", "sectionauthor", "meta",
    "contents", "only", "autosummary", "include", "raw", "tabularcolumns", "default-role", "default-domain",
    "title", "sectnum", "rst-class", "role", "program", "cssclass", "testsetup", "testcleanup",
)
_ADMONITIONS = {
    "note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important", "caution": "Caution",
    "danger": "Danger", "hint": "Hint", "attention": "Attention", "error": "Error", "seealso": "See also",
    "versionadded": "New in version", "versionchanged": "Changed in version", "deprecated": "Deprecated since version",
}
_DIRECTIVE = re.compile(r"^([ \t]*)\.\.[ \t]+([\w:.-]+)::[ \t]*(.*)$")
_LABEL = re.compile(r"^[ \t]*\.\.[ \t]+(?:_[^:\n]+:|\|[^|\n]+\|[ \t]+[\w-]+::.*)[ \t]*$")
_SPHINX_HINT = re.compile(r"^\.\.[ \t]+[\w:-]+::|^:orphan:|:(?:ref|doc|func|class|meth|mod|term|data|attr):`", re.M)

_LETTERS = r"[^\W\d_]+"
_BREAK = re.compile(rf"({_LETTERS})-[ \t]*\n[ \t]*({_LETTERS})")
_WORD = re.compile(_LETTERS)


def drop_nav_lines(text: str) -> str:
    """Text without its "Next: ... Previous: ... Up: ..." navigation lines."""
    return _NAV_LINE.sub("", text)


def looks_like_sphinx(text: str) -> bool:
    return bool(_SPHINX_HINT.search(text))


def strip_sphinx(text: str) -> str:
    """reStructuredText with Sphinx's build markup taken out (see the module docstring)."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    at_top = True  # file-wide fields (:orphan:, :tocdepth: 2) come before any other line
    while i < len(lines):
        line = lines[i]
        if at_top and line.strip() and _FIELD_LINE.fullmatch(line):
            i += 1
            continue
        at_top = at_top and not line.strip()
        directive = _DIRECTIVE.match(line)
        if directive or _LABEL.match(line):
            i = _directive(lines, i, directive, out)
            continue
        out.append(line)
        i += 1
    return _ROLE.sub(_role_text, "\n".join(out))


def _directive(lines: list[str], i: int, match: re.Match[str] | None, out: list[str]) -> int:
    """Handle the directive (or label) at line i; returns the index of the line after it."""
    indent = len(match.group(1)) if match else 0
    end = i + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    name = match.group(2).split(":")[-1] if match else ""
    if not match or name in _BUILD_DIRECTIVES:
        return end if match else i + 1
    body = [line for line in lines[i + 1 : end] if not _FIELD_LINE.fullmatch(line)]
    head = _ADMONITIONS.get(name)
    argument = match.group(3).strip()
    if head:
        out.append(" " * indent + f"{head}{' ' + argument if argument else ''}:")
    elif argument:
        out.append(" " * indent + argument)  # .. function:: join(a, *p), .. code-block:: python
        if name in ("code-block", "code", "sourcecode", "highlight"):
            out.pop()
    out.extend(body)
    return end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _role_text(m: re.Match[str]) -> str:
    inner = m.group(1)
    shown = re.match(r"(.*?)\s*<[^<>]+>$", inner, re.S)  # `text <target>`
    if shown and shown.group(1).strip():
        return shown.group(1).strip()
    return inner.lstrip("~!")


def join_known_hyphens(text: str) -> str:
    """Join words broken at line ends whose joined form the text writes elsewhere."""
    if "-" not in text:
        return text
    words = Counter(w.lower() for w in _WORD.findall(_BREAK.sub(" ", text)))

    def mend(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        if head[-1].islower() and tail[0].islower() and words[(head + tail).lower()] > 0:
            return head + tail
        return m.group(0)

    return _BREAK.sub(mend, text)


def clean_text(text: str, kind: str) -> str:
    """A whole text file's text as it is indexed: Sphinx markup out for reStructuredText
    (or text that uses it), navigation lines out, line-end hyphenation joined."""
    if kind == "rst" or looks_like_sphinx(text):
        text = strip_sphinx(text)
    return join_known_hyphens(drop_nav_lines(text))
