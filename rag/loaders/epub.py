"""EPUB e-books: one page per chapter (spine item) with text, through the HTML path.

The package is found as a reader finds it: META-INF/container.xml names the OPF file,
whose spine lists the chapters in reading order. `page` counts the chapters that have
text (a cover image gives none), located "chapter N". The OPF and container are parsed
with defusedxml (a DOCTYPE is allowed, entities are not); chapters are XHTML read by
rag/loaders/html.py, which expands no entities. A book whose chapters are encrypted (DRM, listed in META-INF/encryption.xml)
fails with that reason; obfuscated fonts alone do not matter.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote

from ..errors import LoaderError
from ..types import Page
from .html import html_to_text
from .text import decode_text, repair
from .zipped import open_package, short

KINDS = {".epub": "html"}
_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_XHTML = ("application/xhtml+xml", "text/html")
_CIPHER_REF = re.compile(rb'CipherReference[^>]*URI="([^"]+)"')


def read(path: Path, source: str, kind: str, notes: list[str], passwords: Iterable[str] = ()) -> list[Page]:
    """The chapters of an EPUB that have text, one page each."""
    pages: list[Page] = []
    with open_package(path, source, "EPUB book") as zf:
        chapters = _spine(zf, source)
        _refuse_drm(zf, source, chapters)
        for name in chapters:
            try:
                data = zf.read(name)
            except KeyError:
                notes.append(f"{name}: listed in the spine but missing from the book")
                continue
            except Exception as exc:  # zlib, zipfile: one damaged chapter
                notes.append(f"{name}: damaged, skipped ({short(exc)})")
                continue
            text = html_to_text(decode_text(data, source))
            if not text.strip():
                continue
            number = len(pages) + 1
            pages.append(Page(source=source, page=number, text=repair(text, notes), kind=kind,
                              location=f"chapter {number}"))
    if not pages:
        raise LoaderError(source, "empty file (no text)")
    return pages


def _parse(zf: zipfile.ZipFile, name: str, source: str):  # -> Element
    import defusedxml
    import defusedxml.ElementTree as SafeET

    try:
        # A DOCTYPE alone is allowed (EPUB 2 files carry public identifiers, never
        # fetched); entity declarations and external references are refused.
        return SafeET.fromstring(zf.read(name), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except KeyError:
        raise LoaderError(source, f"not an EPUB book: no {name}") from None
    except defusedxml.DefusedXmlException:
        raise LoaderError(source, f"XML with a DTD or entity declarations ({name}); refused for safety") from None
    except Exception as exc:
        raise LoaderError(source, f"damaged EPUB book: {name} cannot be read ({short(exc)})") from None


def _spine(zf: zipfile.ZipFile, source: str) -> list[str]:
    """The package paths of the spine's (X)HTML documents, in reading order."""
    container = _parse(zf, "META-INF/container.xml", source)
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    opf_path = rootfile.get("full-path", "") if rootfile is not None else ""
    if not opf_path:
        raise LoaderError(source, "damaged EPUB book: container.xml names no package file")
    opf = _parse(zf, opf_path, source)
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): (posixpath.normpath(posixpath.join(base, unquote(item.get("href", "")))), item.get("media-type"))
        for item in opf.iter(f"{_OPF}item")
    }
    chapters = []
    for ref in opf.iter(f"{_OPF}itemref"):
        href, media_type = manifest.get(ref.get("idref"), (None, None))
        if href and media_type in _XHTML and href not in chapters:  # a chapter listed twice is read once
            chapters.append(href)
    if not chapters:
        raise LoaderError(source, "damaged EPUB book: the spine lists no chapters")
    return chapters


def _refuse_drm(zf: zipfile.ZipFile, source: str, chapters: list[str]) -> None:
    try:
        data = zf.read("META-INF/encryption.xml")
    except KeyError:
        return
    except Exception:
        data = b""
    encrypted = {posixpath.normpath(unquote(m.group(1).decode("utf-8", "replace"))) for m in _CIPHER_REF.finditer(data)}
    if encrypted & set(chapters):
        raise LoaderError(source, "encrypted (DRM); not supported")
