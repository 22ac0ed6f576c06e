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


def object_stream_pdf(pages: list[str]) -> bytes:
    """A PDF 1.5 as current writers make it: the catalog, page tree, pages and font packed
    in a compressed object stream, the page contents as streams of their own, and a
    cross-reference stream (no xref table) at the end. Written by hand: fpdf2 and pypdf
    write neither."""
    import struct
    import zlib

    n = len(pages)
    font, first_page, first_content = 3, 4, 4 + n
    objstm, xref = first_content + n, first_content + n + 1
    packed = {1: "<< /Type /Catalog /Pages 2 0 R >>",
              2: f"<< /Type /Pages /Kids [{' '.join(f'{first_page + i} 0 R' for i in range(n))}] /Count {n} >>",
              font: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    for i in range(n):
        packed[first_page + i] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
                                  f"<< /F1 {font} 0 R >> >> /Contents {first_content + i} 0 R >>")
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    where: dict[int, tuple[int, int, int]] = {}  # number -> (type, field 2, field 3)
    for i, text in enumerate(pages):
        content = zlib.compress(f"BT /F1 12 Tf 72 760 Td ({text}) Tj ET".encode("latin-1"))
        where[first_content + i] = (1, len(out), 0)
        out += f"{first_content + i} 0 obj\n<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
        out += content + b"\nendstream\nendobj\n"
    bodies, header, at = b"", [], 0
    for index, (number, body) in enumerate(sorted(packed.items())):
        header.append(f"{number} {at}")
        bodies += body.encode() + b"\n"
        at = len(bodies)
        where[number] = (2, objstm, index)
    head = (" ".join(header) + "\n").encode()
    data = zlib.compress(head + bodies)
    where[objstm] = (1, len(out), 0)
    out += (f"{objstm} 0 obj\n<< /Type /ObjStm /N {len(packed)} /First {len(head)} /Length {len(data)} "
            f"/Filter /FlateDecode >>\nstream\n").encode() + data + b"\nendstream\nendobj\n"
    where[xref] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *where.get(k, (0, 0, 65535))) for k in range(xref + 1))
    out += (f"{xref} 0 obj\n<< /Type /XRef /Size {xref + 1} /W [1 4 2] /Root 1 0 R /Length {len(rows)} >>\n"
            f"stream\n").encode() + rows + b"\nendstream\nendobj\n"
    out += f"startxref\n{where[xref][1]}\n%%EOF\n".encode()
    return bytes(out)
