"""Damaged copies of real documents, for the ingest fuzz test (tests/test_fuzz_ingest.py)
and its long run (bench/fuzz_ingest.py).

The seeds are the sample corpus (PDF, Word, PowerPoint, Excel, Markdown, text, PNG) and
documents made here in the formats it lacks (HTML, EPUB, OpenDocument, CSV, an encrypted
PDF). Each case applies one mutation, chosen and parameterised by a seeded random
generator, so case N is the same file on every run: bit flips, truncation, a zip member
cut short, garbled, dropped or given broken XML, and damaged PDF dictionaries (lengths,
counts, references, filters, the cross-reference table, and the /Encrypt dictionary's
/V, /R, /O and /Length).
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from pathlib import Path
from typing import Callable

from made_files import encrypted_pdf

PROJECT = Path(__file__).resolve().parents[1]
ZIPPED = (".docx", ".pptx", ".xlsx", ".epub", ".odt")


def seeds() -> dict[str, bytes]:
    """Every seed document by name (its suffix picks the loader)."""
    out = {p.name: p.read_bytes() for p in sorted((PROJECT / "corpus").iterdir()) if p.is_file()}
    out["page.html"] = (PROJECT / "tests" / "data" / "page.html").read_bytes()
    out["locked.pdf"] = encrypted_pdf("pw", algorithm="RC4-128")
    out["aes.pdf"] = encrypted_pdf("pw", algorithm="AES-256")
    out["book.epub"] = _epub()
    out["notes.odt"] = _odt()
    out["table.csv"] = b"name,habitat,food\nbarn owl,farmland,voles\nsnowy owl,tundra,lemmings\n"
    out["titles.rst"] = (PROJECT / "tests" / "data" / "titles.rst").read_bytes()
    return out


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


def _epub() -> bytes:
    chapter = ("<?xml version='1.0' encoding='utf-8'?><html xmlns='http://www.w3.org/1999/xhtml'><head><title>One"
               "</title></head><body><h1>Owls</h1><p>Owls hunt at night and sleep by day.</p></body></html>")
    return _zip({
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": "<?xml version='1.0'?><container version='1.0' xmlns='urn:oasis:names:tc:"
        "opendocument:xmlns:container'><rootfiles><rootfile full-path='OEBPS/content.opf' media-type='application/"
        "oebps-package+xml'/></rootfiles></container>",
        "OEBPS/content.opf": "<?xml version='1.0'?><package xmlns='http://www.idpf.org/2007/opf' version='3.0'>"
        "<metadata/><manifest><item id='c1' href='one.xhtml' media-type='application/xhtml+xml'/></manifest>"
        "<spine><itemref idref='c1'/></spine></package>",
        "OEBPS/one.xhtml": chapter,
    })


def _odt() -> bytes:
    return _zip({
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": "<?xml version='1.0' encoding='UTF-8'?><office:document-content xmlns:office='urn:oasis:"
        "names:tc:opendocument:xmlns:office:1.0' xmlns:text='urn:oasis:names:tc:opendocument:xmlns:text:1.0'>"
        "<office:body><office:text><text:h>Owls</text:h><text:p>Barn owls nest in old barns.</text:p>"
        "</office:text></office:body></office:document-content>",
    })


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 64)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, max(2, len(data)))]


def damage_member(data: bytes, rng: random.Random) -> bytes:
    """A zip's member cut short, garbled, emptied, given broken XML, or left out."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
    except zipfile.BadZipFile:
        return bit_flips(data, rng)
    victim = rng.choice(sorted(n for n in members if n.endswith((".xml", ".xhtml", ".opf", ".rels"))) or
                        sorted(members))
    body = members[victim]
    how = rng.choice(["cut", "garble", "empty", "xml", "drop", "entity"])
    if how == "drop":
        del members[victim]
    elif how == "cut":
        members[victim] = body[: rng.randrange(max(1, len(body)))]
    elif how == "garble":
        members[victim] = bit_flips(body, rng)
    elif how == "empty":
        members[victim] = b""
    elif how == "xml":
        members[victim] = body.replace(b">", b"", rng.randint(1, 5)).replace(b"</", b"<", 1)
    else:
        members[victim] = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;&a;&b;</x>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


_PDF_EDITS: list[tuple[bytes, Callable[[random.Random], bytes]]] = [
    (rb"/Length \d+", lambda r: b"/Length " + str(r.choice([0, 1, 7, 99999999])).encode()),
    (rb"/Count \d+", lambda r: b"/Count " + r.choice([b"-1", b"0", b"999999", b"x"])),
    (rb"/Root \d+ \d+ R", lambda r: r.choice([b"/Root 999 0 R", b"/Root null", b"/Root 1 0 R"])),
    (rb"/Kids \[[^\]]*\]", lambda r: r.choice([b"/Kids []", b"/Kids [999 0 R]", b"/Kids 5"])),
    (rb"/Filter /\w+", lambda r: r.choice([b"/Filter /Bogus", b"/Filter /LZWDecode", b"/Filter [/FlateDecode /DCT]"])),
    (rb"startxref\s+\d+", lambda r: b"startxref\n" + str(r.choice([0, 5, 10**9])).encode()),
    (rb"/V \d", lambda r: b"/V " + r.choice([b"0", b"3", b"9", b"-1", b"x"])),
    (rb"/R \d", lambda r: b"/R " + r.choice([b"1", b"7", b"0"])),
    (rb"/O <[0-9a-fA-F]+>", lambda r: r.choice([b"/O <00>", b"/O ()", b"/O 5"])),
    (rb"/Encrypt \d+ \d+ R", lambda r: r.choice([b"/Encrypt 999 0 R", b"/Encrypt << >>", b"/Encrypt null"])),
    (rb"/MediaBox \[[^\]]*\]", lambda r: r.choice([b"/MediaBox []", b"/MediaBox [0 0 -5 x]"])),
    (rb"/Font <<", lambda r: b"/Font << /F1 999 0 R "),
]


def damage_pdf(data: bytes, rng: random.Random) -> bytes:
    """One to three of the PDF's dictionary entries (or its startxref) given bad values."""
    applicable = [(pattern, make) for pattern, make in _PDF_EDITS if re.search(pattern, data)]
    if not applicable:
        return bit_flips(data, rng)
    for pattern, make in rng.sample(applicable, min(len(applicable), rng.randint(1, 3))):
        data = re.sub(pattern, lambda m: make(rng), data, count=rng.choice([1, 0]))
    return data


def mutations_for(name: str) -> list[Callable[[bytes, random.Random], bytes]]:
    suffix = Path(name).suffix.lower()
    out = [bit_flips, truncate]
    if suffix in ZIPPED:
        out += [damage_member, damage_member]
    if suffix == ".pdf":
        out += [damage_pdf, damage_pdf, damage_pdf]
    return out


def cases(n: int, seed: int = 28, skip_images: bool = False) -> dict[str, bytes]:
    """n damaged documents by file name ("007-bit_flips-quantization.pptx"): the seeds
    taken in turn, each case's mutation drawn from its own generator."""
    pool = {k: v for k, v in seeds().items() if not (skip_images and k.endswith(".png"))}
    names = sorted(pool)
    out: dict[str, bytes] = {}
    for i in range(n):
        name = names[i % len(names)]
        rng = random.Random(f"{seed}-{i}")
        mutate = rng.choice(mutations_for(name))
        out[f"{i:03d}-{mutate.__name__}-{name}"] = mutate(pool[name], rng)
    return out
