"""Truncated PDFs: how many pages come back when a real PDF is cut at 30, 50, 70 and 90%
of its bytes (a download that stopped), against the pages of the whole file.

The files are the shared real-world PDFs that have a text layer and open without a
password (../shared/data/pdfs) and the sample corpus's PDFs. The recovery
(rag/loaders/pdf.py rebuild_pdf) was developed while looking at some of these same
files, so this is a regression figure, not a held-out one. Run it against another
checkout's code with PYTHONPATH to compare (the reference: the code before the change).

    python bench/pdf_truncation.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "pdfs"
NAMES = ["pm-naacl06-shinyama.pdf", "pp-missing_info.pdf", "pp-test-Orient.pdf", "sf-google-doc-document.pdf",
         "sf-multicolumn.pdf", "pm-zen_of_python_corrupted.pdf"]
CUTS = (0.3, 0.5, 0.7, 0.9)


def pages_read(path: Path) -> int:
    from rag.errors import LoaderError
    from rag.loaders import load

    try:
        return len(load(path, path.name, time_limit=60)[0])
    except LoaderError:
        return 0


def main() -> int:
    logging.disable(logging.WARNING)  # pypdf's complaints about every cut file
    import rag

    print(f"rag from {Path(rag.__file__).parent}")
    files = [SHARED / n for n in NAMES if (SHARED / n).is_file()] + sorted((ROOT / "corpus").glob("*.pdf"))
    got = want = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            data, whole = path.read_bytes(), pages_read(path)
            row = []
            for cut in CUTS:
                copy = Path(tmp) / path.name
                copy.write_bytes(data[: int(len(data) * cut)])
                row.append(pages_read(copy))
            got, want = got + sum(row), want + whole * len(CUTS)
            print(f"{path.name:34s} {whole} page(s); read when cut at {'/'.join(f'{c:.0%}' for c in CUTS)}: {row}")
    print(f"pages read from the cut files: {got} of {want} ({got / max(want, 1):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
