"""A folder like the documentation of a stock machine (licence texts without a suffix,
Texinfo and Sphinx HTML manuals, reStructuredText sources, a rendered man page, a
METADATA file): what is stored is the documents' text, not their markup or navigation.
The files are made here, after the shapes of /usr/share/common-licenses, /usr/share/doc
and man pages, so the test does not depend on what a machine has installed."""

from __future__ import annotations

import json
from pathlib import Path

from fakes import HashEmbedder
from typer.testing import CliRunner

from rag import Settings, ingest
from rag.cli import app
from rag.loaders import html_to_text, is_supported
from rag.loaders.cleanup import join_known_hyphens, strip_sphinx
from rag.stores.faiss import FaissStore

runner = CliRunner()

TEXINFO = """<!DOCTYPE html>
<html>
<!-- Created by GNU Texinfo 6.8 -->
<head><title>Introduction (libowl: the owl library)</title>
<link href="Using-libowl.html" rel="next" title="Using libowl"></head>
<body lang="en">
<div class="chapter" id="Introduction">
<div class="header">
<p>
Next: <a href="Using-libowl.html" accesskey="n" rel="next">Using libowl</a>, Previous: <a href="index.html"
accesskey="p" rel="prev">libowl</a>, Up: <a href="index.html" accesskey="u" rel="up">libowl</a> &nbsp;
[<a href="Index.html" title="Index" rel="index">Index</a>]</p>
</div>
<hr>
<h2 class="chapter">1 What is libowl?</h2>
<p>Compilers for night birds generate calls that follow the hooting convention.</p>
<hr>
<div class="nav-panel">
<p>
Next: <a href="Using-libowl.html">Using libowl</a>, Previous: <a href="index.html">libowl</a>, Up:
<a href="index.html">libowl</a></p>
</div>
</div>
</body>
</html>
"""

SPHINX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" /><title>Owls &#8212; Birds 1.0 documentation</title></head>
<body>
<div class="related" role="navigation" aria-label="Related">
  <h3>Navigation</h3>
  <ul><li class="right"><a href="genindex.html" title="General Index">index</a></li>
  <li class="right"><a href="hawks.html" title="Hawks">next</a> |</li>
  <li class="nav-item nav-item-0"><a href="index.html">Birds 1.0 documentation</a> &#187;</li></ul>
</div>
<div class="document"><div class="documentwrapper"><div class="body" role="main">
<section id="owls">
<h1>Owls<a class="headerlink" href="#owls" title="Link to this heading">¶</a></h1>
<p>Owls swallow their prey whole and cough up pellets of bone and fur.</p>
</section>
</div></div>
<div class="sphinxsidebar" role="navigation" aria-label="Main">
  <div class="sphinxsidebarwrapper"><h3>Quick search</h3><p>Search this site</p></div>
</div>
</div>
<header><p>Site banner with a logo</p></header>
<article><header><h2>Barn owls</h2></header><p>Barn owls hunt by ear.</p></article>
<footer role="contentinfo">&#169; Copyright 2024, the birders. Created using Sphinx 7.2.</footer>
</body></html>
"""

RST = """:orphan:

.. _owl-guide:

==========
Owl guide
==========

.. toctree::
   :maxdepth: 2

   hunting
   pellets

See :ref:`the pellet chapter <pellets>` and :func:`~birds.owl.hoot` for details.

.. note::
   Owls are mostly nocturnal.

.. index:: single: owl; barn

Barn owls nest in old buildings.
"""

MAN = """LS(1)                            User Commands                           LS(1)

NAME
       ls - list directory contents

DESCRIPTION
       List  information  about the FILEs (the current directory by default).
       Sort entries alphabetically if none of -cftuvSUX nor --sort  is  speci-
       fied.  Mandatory arguments to long options are mandatory for short op-
       tions too, and the informa-
       tion shown is the same.  A sort order may be specified with --sort.
       Long options are the well-
       known GNU style.
"""

APACHE = """
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION

   1. Definitions.

      "License" shall mean the terms and conditions for use, reproduction,
      and distribution as defined by Sections 1 through 9 of this document.
"""


def make_folder(root: Path) -> Path:
    files = {
        "common-licenses/Apache-2.0": APACHE,
        "common-licenses/BSD": "Redistribution and use in source and binary forms are permitted.\n",
        "COPYING": "This program is free software; you can redistribute it and/or modify it.\n",
        "README": "Owl tools: read me first.\n",
        "NOTICE": "This product includes software developed by night birds.\n",
        "pkg.dist-info/METADATA": "Metadata-Version: 2.1\nName: owls\nSummary: Tools for owl watchers\n",
        "html/Introduction.html": TEXINFO,
        "html/owls.html": SPHINX,
        "source/guide.rst": RST,
        "man/ls.txt": MAN,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "bin").mkdir()
    (root / "bin" / "owlctl").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    return root


def test_a_stock_machines_documentation_is_stored_without_markup(tmp_path: Path):
    docs = make_folder(tmp_path / "docs")
    s = Settings.load({"index_dir": tmp_path / "idx"})
    report = ingest([docs], settings=s, embedder=HashEmbedder())
    assert set(report.added) == {"common-licenses/Apache-2.0", "common-licenses/BSD", "COPYING", "README", "NOTICE",
                                 "pkg.dist-info/METADATA", "html/Introduction.html", "html/owls.html",
                                 "source/guide.rst", "man/ls.txt"}
    assert [(f.path, f.reason) for f in report.skipped_files] == [
        ("bin/owlctl", "no file type (no suffix) and not plain text")]
    store = FaissStore.open(tmp_path / "idx")
    texinfo = store.page_text("html/Introduction.html", None)
    assert "hooting convention" in texinfo and "Next:" not in texinfo and "Previous:" not in texinfo
    sphinx = store.page_text("html/owls.html", None)
    assert "pellets of bone" in sphinx and "Barn owls hunt by ear" in sphinx and "## Barn owls" in sphinx
    for furniture in ("Navigation", "General Index", "Quick search", "Copyright", "banner", "¶"):
        assert furniture not in sphinx, furniture
    guide = store.page_text("source/guide.rst", None)
    for markup in (":orphan:", "toctree", ":maxdepth:", ":ref:", ":func:", ".. note::", ".. index::", "_owl-guide"):
        assert markup not in guide, markup
    assert "See the pellet chapter and birds.owl.hoot for details." in guide
    assert "Note:" in guide and "Owls are mostly nocturnal." in guide and "Barn owls nest" in guide
    man = store.page_text("man/ls.txt", None)
    assert "the information" in man and "informa-" not in man
    assert "--sort  is  specified." in man and "for short options too" in man
    assert "well-\n       known" in man  # nor is "wellknown": a meant hyphen is kept
    assert "Apache License" in store.page_text("common-licenses/Apache-2.0", None)
    store.close()


def test_cli_json_lists_every_skipped_file(tmp_path: Path, hash_models):
    docs = make_folder(tmp_path / "docs")
    (docs / "drawing.dwg").write_bytes(b"\x00AC1027")
    result = runner.invoke(app, ["ingest", str(docs), "--index-dir", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["skipped_files"] == [{"path": "bin/owlctl", "reason": "no file type (no suffix) and not plain text"},
                                     {"path": "drawing.dwg", "reason": "unsupported file type .dwg"}]
    assert data["skipped"] == {"": 1, ".dwg": 1}


def test_known_text_names_and_sniffed_text_are_supported(tmp_path: Path):
    for name, data in {"LICENSE": b"MIT", "CHANGELOG.Debian": b"owls (1.0) unstable", "notes": b"plain words",
                       "GPL-3": b"GNU GENERAL PUBLIC LICENSE", "latin": "caf\u00e9 cr\u00e8me".encode("cp1252")}.items():
        (tmp_path / name).write_bytes(data)
        assert is_supported(tmp_path / name), name
    for name, data in {"blob": b"\x00\x01\x02", "empty": b"", "x.dwg": b"text but a type no loader reads"}.items():
        (tmp_path / name).write_bytes(data)
        assert not is_supported(tmp_path / name), name


def test_html_furniture_rules():
    text = html_to_text("<nav>Home | About</nav><main><header><h1>Title</h1></header><p>Body.</p>"
                        "<div class='breadcrumb'>Docs &gt; Title</div><ul><li class=nav>Prev<li>Kept item</ul></main>")
    assert text == "# Title\n\nBody.\n\nKept item\n"
    assert html_to_text("<nav><p>Only navigation here</p></nav>") == "Only navigation here\n"  # never empty


def test_sphinx_roles_keep_their_text():
    assert strip_sphinx("Use :py:meth:`Owl.hoot` or :doc:`/guide` or :term:`pellet <Pellet>`.") == \
        "Use Owl.hoot or /guide or pellet."
    assert strip_sphinx(".. versionadded:: 3.2\n   The hoot option.\n") == "New in version 3.2:\n   The hoot option.\n"
    assert strip_sphinx(".. code-block:: python\n\n   hoot()\n") == "\n   hoot()\n"


def test_hyphens_join_only_into_words_the_document_writes():
    assert join_known_hyphens("the informa-\n  tion, information") == "the information, information"
    assert join_known_hyphens("a self-\nmade owl") == "a self-\nmade owl"
    assert join_known_hyphens("COVID-\n19 and Anti-\nWar, war antiwar") == "COVID-\n19 and Anti-\nWar, war antiwar"
