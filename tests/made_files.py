"""Documents the tests make themselves, so they pass in a fresh clone with no ../shared:
PDFs written with fpdf2 (plain, encrypted with pypdf, blank, damaged) and the damaged
copies the fuzz tests start from."""

from __future__ import annotations

import io
import re
from pathlib import Path

PASSWORD = "openpassword"
LOREM = "Lorem ipsum dolor sit amet: owls hunt small mammals at night in the forest."


def pdf_bytes(pages: list[list[str]] | None = None) -> bytes:
    """A PDF with a text layer: one page per list of lines."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for lines in pages or [[LOREM]]:
        pdf.add_page()
        for i, line in enumerate(lines):
            pdf.text(20, 30 + 7 * i, line)
    return bytes(pdf.output())


def blank_pdf() -> bytes:
    """One page with no text and no image: nothing to extract and nothing to OCR."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.line(20, 20, 100, 100)
    return bytes(pdf.output())


def encrypted_pdf(password: str = PASSWORD, algorithm: str = "AES-256", plain: bytes | None = None) -> bytes:
    """`plain` (default: the lorem page) encrypted with a user password."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain or pdf_bytes())))
    writer.encrypt(password, owner_password="owner-" + password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def damaged_encrypt(version: bytes = b"0") -> bytes:
    """An RC4 encrypted PDF whose /Encrypt dictionary names an algorithm version pypdf
    does not implement (/V 0): pypdf raises NotImplementedError while opening it."""
    data = encrypted_pdf("pw", algorithm="RC4-40")
    return re.sub(rb"/V \d", b"/V " + version, data, count=1)


def without_xref(data: bytes) -> bytes:
    """A PDF whose cross-reference table and trailer are cut off (a download that stopped)."""
    return data[: data.rfind(b"xref")]


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def bad_pdfs() -> dict[str, bytes]:
    """Broken, encrypted and blank PDFs: failures and notes, as the shared PDFs give."""
    good = pdf_bytes([[LOREM], ["Second page: the xref table of this file was lost."]])
    return {
        "locked.pdf": encrypted_pdf(),
        "blank.pdf": blank_pdf(),
        "no-xref.pdf": without_xref(good),
        "bad-encrypt.pdf": damaged_encrypt(),
        "garbage.pdf": b"%PDF-1.7\n1 0 obj\n<< /Kids [" + b"9 0 R " * 40,  # over 100 bytes: see test_prefetch
    }
