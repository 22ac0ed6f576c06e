"""Assemble the real-document question folder from files a stock machine of this kind carries.

The folder (``bench/realdocs/`` by default, gitignored) holds man pages rendered to plain
text, license texts from /usr/share/common-licenses, HTML manuals from /usr/share/doc and
two PDF manuals, all shipped by Debian packages installed in the base image (the
``installed-python`` list of the machine's image), so a fresh CI machine has them too. The
documents' texts are other people's words and are never committed: only this script and
``bench/realdocs_questions.jsonl``.

The questions were written against the files whose sha256 is pinned in DOCS (Debian 12's
packages). A source that differs (a package upgrade, the Debian 13 image) is still copied,
with a warning, and one that is missing is left out; ``--check`` reports both, and
``stale(folder)`` gives the same list to a benchmark that wants to warn. ``--check`` also
verifies, on the text as rag's own loaders read it, that every answer string of an
answerable question occurs in its document (on its page, for a PDF), and that none of the
answers one would expect to an unanswerable question (its ``absent`` strings) occurs in
the document whose topic it names.

Beside the fields of bench/corpus_questions.jsonl, each question has ``document`` (the
file it is about, also for an unanswerable one, whose ``sources`` stay empty) and
``split``: "tune" or "test", by document (12 documents each), so a combiner fitted on one
half is checked on documents it never saw.

Usage:
    python scripts/make_realdocs.py [OUT]           # build (default bench/realdocs)
    python scripts/make_realdocs.py [OUT] --check   # build, then check hashes and answers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "realdocs"
QUESTIONS = ROOT / "bench" / "realdocs_questions.jsonl"
MANIFEST = ".manifest.json"  # hidden, so rag ingest skips it

# (name in the folder, source file, Debian package, sha256 of the source the questions were written on)
DOCS = [
    ("grep.1.txt", "/usr/share/man/man1/grep.1.gz", "grep",
     "ac48e22348240a1b740a823ec2c1dc9b6ae6e977f678f1a8d00dfb4bc6f90800"),
    ("tar.1.txt", "/usr/share/man/man1/tar.1.gz", "tar",
     "8fece2801dbfef3cb3235e94e592bd0b5e1e2e059efec4f9916fc0e41f64fe14"),
    ("gzip.1.txt", "/usr/share/man/man1/gzip.1.gz", "gzip",
     "7c76a9c1e535e82ed11acd7eae69c2138598c3decfe8e1629387809c6ba42a97"),
    ("sort.1.txt", "/usr/share/man/man1/sort.1.gz", "coreutils",
     "604df6d156e2388abb6d912d30d7ca0fa6a0241b36b4f6e58726cc801faa6616"),
    ("xargs.1.txt", "/usr/share/man/man1/xargs.1.gz", "findutils",
     "0f485b50e182c6ef978c4a38a7022c4785b0b4ee592ab186b06e0d90e3c40c3f"),
    ("chmod.1.txt", "/usr/share/man/man1/chmod.1.gz", "coreutils",
     "adba4760ca38854babfd3283a944282ecde59911bcf995b64a4ec2a1e07d610b"),
    ("wget.1.txt", "/usr/share/man/man1/wget.1.gz", "wget",
     "05efaff206f65865eef7dc6fc119dead5df0940f2d6b578aea0fce5dbd006689"),
    ("make.1.txt", "/usr/share/man/man1/make.1.gz", "make",
     "95831a5c9a2e1476b0f5c9b2946f9902e95f6caf327ad9dbe66db1257763d001"),
    ("Apache-2.0.txt", "/usr/share/common-licenses/Apache-2.0", "base-files",
     "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"),
    ("GPL-3.txt", "/usr/share/common-licenses/GPL-3", "base-files",
     "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"),
    ("MPL-2.0.txt", "/usr/share/common-licenses/MPL-2.0", "base-files",
     "fab3dd6bdab226f1c08630b1dd917e11fcb4ec5e1e020e2c16f83a0a13863e85"),
    ("BSD.txt", "/usr/share/common-licenses/BSD", "base-files",
     "5d588eb3b157d52112afea935c88a7ff9efddc1e2d95a42c25d3b96ad9055008"),
    ("CC0-1.0.txt", "/usr/share/common-licenses/CC0-1.0", "base-files",
     "a2010f343487d3f7618affe54f789f5487602331c0a8d03f49e9a7c547cf0499"),
    ("Artistic.txt", "/usr/share/common-licenses/Artistic", "base-files",
     "b7fd9b73ea99602016a326e0b62e6646060d18febdd065ceca8bb482208c3d88"),
    ("bc.html", "/usr/share/doc/bc/bc.html", "bc",
     "000be77758b76a09a5273199ae8f55ac55169cab6090238bf4979284be7d6f2c"),
    ("time.html", "/usr/share/doc/time/time.html", "time",
     "e90753640f8ca23c9ca57c1cda5dee2b3a6520e78ddefae48dabf484c615f026"),
    ("ninja-manual.html", "/usr/share/doc/ninja-build/manual.html", "ninja-build",
     "b1a2f010c30cfe7da72773b5e510eef3668a02f862e678462262780b3326f004"),
    ("users-and-groups.html", "/usr/share/doc/base-passwd/users-and-groups.html", "base-passwd",
     "0d3faf981eddd55fca42b15670ecc0a3170bc0949c65d346ff471d10a5190c0e"),
    ("python-policy.html", "/usr/share/doc/python3/python-policy.html", "python3-dev",
     "5272c69f91d3421dfa656d3dc52de721a02eee04749395ed03cc974cbc2ca201"),
    ("zlib_how.html", "/usr/share/doc/zlib1g-dev/examples/zlib_how.html", "zlib1g-dev",
     "80fb647be8450bd7a07d8495244e1f061dfbdbdb53172ca24e7ffff8ace9c72f"),
    ("libffi-Introduction.html", "/usr/share/doc/libffi8/html/Introduction.html", "libffi-dev",
     "02b287115840d8cc291c54e78b90e78d5f868ff47ec357d3100569daf815bd4e"),
    ("libffi-The-Basics.html", "/usr/share/doc/libffi8/html/The-Basics.html", "libffi-dev",
     "e52e0840c0815deed45a4d86ee46245353e468ba1af7027758be91ac6d0d2ca5"),
    ("libtasn1.pdf", "/usr/share/doc/libtasn1-doc/libtasn1.pdf", "libtasn1-doc",
     "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3"),
    ("shared-mime-info-spec.pdf", "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf", "shared-mime-info",
     "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002"),
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def render_man(source: Path) -> bytes:
    """A man page as plain text: 80 columns, no hyphenation or justification, so the
    words a question quotes stay whole and single-spaced."""
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": "", "MANPAGER": "cat"}
    done = subprocess.run(["man", "--no-hyphenation", "--no-justification", "-l", str(source)],
                          capture_output=True, env=env, check=True)
    return done.stdout


def build(out: Path) -> list[dict]:
    """Copy (or render) every document into `out`; return the manifest's entries."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, source, package, pinned in DOCS:
        src = Path(source)
        if not src.is_file():
            print(f"missing: {source} (package {package}); {name} left out", file=sys.stderr)
            continue
        found = sha256(src)
        if found != pinned:
            print(f"warning: {source} differs from the version the questions were written on "
                  f"(sha256 {found[:12]}, expected {pinned[:12]})", file=sys.stderr)
        data = render_man(src) if source.startswith("/usr/share/man/") else src.read_bytes()
        (out / name).write_bytes(data)
        entries.append({"name": name, "source": source, "package": package, "sha256": found,
                        "expected_sha256": pinned, "written_sha256": hashlib.sha256(data).hexdigest()})
    (out / MANIFEST).write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return entries


def stale(folder: Path) -> list[str]:
    """Names of the folder's documents whose source is not the version the questions were
    written on (or that are missing): what a benchmark should warn about."""
    path = folder / MANIFEST
    if not path.is_file():
        return [name for name, *_ in DOCS]
    entries = {e["name"]: e for e in json.loads(path.read_text(encoding="utf-8"))}
    return [name for name, _, _, pinned in DOCS if entries.get(name, {}).get("sha256") != pinned]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def document_pages(path: Path) -> dict[int | None, str]:
    """The document's text as rag reads it (its loaders), by page, whitespace and case folded."""
    sys.path.insert(0, str(ROOT))
    from rag.loaders import iter_pages

    pages: dict[int | None, str] = {}
    for page in iter_pages(path, path.name, []):
        pages[page.page] = pages.get(page.page, "") + " " + _norm(page.text)
    return pages


def check(out: Path, questions: Path = QUESTIONS) -> list[str]:
    """Problems with the folder and the question set (empty when all is well)."""
    problems = [f"{name}: source differs from the pinned version" for name in stale(out)]
    pages = {name: document_pages(out / name) for name, *_ in DOCS if (out / name).is_file()}
    texts = {name: " ".join(by_page.values()) for name, by_page in pages.items()}
    items = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = {name for name, *_ in DOCS}
    ids = [item["id"] for item in items]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    splits: dict[str, set[str]] = {}
    for item in items:
        document = item["document"]
        splits.setdefault(document, set()).add(item["split"])
        problems += [f"{item['id']}: unknown document {name}" for name in {document, *item["sources"]} - names]
        if item["split"] not in ("tune", "test"):
            problems.append(f"{item['id']}: split must be tune or test")
        if item["answerable"]:
            page = item["pages"][0] if item["pages"] else None
            text = pages.get(document, {}).get(page, "") if page is not None else texts.get(document, "")
            problems += [f"{item['id']}: {answer!r} not found in {document} (page {page})"
                         for answer in item["answers"] or [""] if not answer or _norm(answer) not in text]
            continue
        # An unanswerable question names its document's topic; the answers one would expect are not in it.
        problems += [f"{item['id']} (unanswerable): {absent!r} occurs in {document}"
                     for absent in item.get("absent", []) if _norm(absent) in texts.get(document, "")]
    problems += [f"{s}: questions in both splits" for s, v in sorted(splits.items()) if len(v) > 1]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="check the pinned hashes and every answer string")
    args = parser.parse_args()
    entries = build(args.out)
    print(f"{len(entries)} documents in {args.out}")
    if not args.check:
        return 0
    problems = check(args.out)
    for problem in problems:
        print(problem)
    print(f"check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
