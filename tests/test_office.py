"""Office, OpenDocument, spreadsheet and EPUB loaders (rag/loaders/office.py, sheets.py,
opendoc.py, epub.py, tables.py, zipped.py): files written by the libraries themselves
(or, for ODF and EPUB, zipped by hand as the specs lay them out) in tmp_path."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fakes import HashEmbedder, settings
from rag.chunking import chunk_page
from rag.errors import LoaderError
from rag.ingestion import ingest
from rag.loaders import load, sheets, tables, zipped


def count(texts):
    return [len(t.split()) for t in texts]


def loaded(path: Path):
    return load(path, path.name)


def reason(path: Path) -> str:
    with pytest.raises(LoaderError) as info:
        loaded(path)
    return info.value.reason


# --- builders ------------------------------------------------------------------------

BUDGET = [["Project", "Year", "Budget", "Owner"]] + [
    [f"Project {name}", str(2000 + i), f"{i}.5 million euros", f"Team {name.lower()}"]
    for i, name in enumerate(["Apollo", "Borealis", "Cygnus", "Draco", "Eridanus", "Fornax", "Gemini", "Hydra"])
]


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Annual report", 1)
    document.add_paragraph("The year went well for every team.")
    document.add_paragraph("hire two engineers", style="List Bullet")
    document.add_paragraph("open the Lisbon office", style="List Bullet")
    document.add_heading("Budgets", 2)
    table = document.add_table(rows=len(BUDGET), cols=4)
    for r, row in enumerate(BUDGET):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    section = document.sections[0]
    section.header.paragraphs[0].text = "Confidential running header"
    section.footer.paragraphs[0].text = "Page footer text"
    document.add_comment(document.paragraphs[1].runs, text="A reviewer's remark", author="R")
    document.save(path)
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly results"
    body = first.placeholders[1].text_frame
    body.text = "revenue grew"
    body.add_paragraph().text = "costs fell"
    first.notes_slide.notes_text_frame.text = "Mention the record month of March."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Scores"
    grid = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([["Player", "Score"], ["Ana", "91"], ["Bo", "78"]]):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    deck.save(path)
    return path


def make_xlsx(path: Path, rows: int = 3) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Revenue"
    sheet.append(["Quarter", "Revenue", "Growth"])
    for i in range(rows):
        sheet.append([f"Q{i + 1}", 1234.5 * (i + 1), 0.125])
        sheet.cell(i + 2, 2).number_format = "#,##0.00"
        sheet.cell(i + 2, 3).number_format = "0.0%"
    book.create_sheet("Staff").append(["Name", "Role"])
    book["Staff"].append(["Ana", "lead"])
    book.save(path)
    return path


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"')


def make_odf(path: Path, kind: str, body: str) -> Path:
    content = f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}><office:body>{body}</office:body></office:document-content>'
    return write_zip(path, {"mimetype": f"application/vnd.oasis.opendocument.{kind}", "content.xml": content})


def odf_row(*cells: str, repeat: int = 1) -> str:
    tds = "".join(f"<table:table-cell><text:p>{c}</text:p></table:table-cell>" for c in cells)
    return f'<table:table-row table:number-rows-repeated="{repeat}">{tds}<table:table-cell table:number-columns-repeated="1000"/></table:table-row>'


def make_epub(path: Path) -> Path:
    def chapter(title: str, text: str) -> str:
        return (f'<?xml version="1.0"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head>'
                f"<body><h1>{title}</h1><p>{text}</p></body></html>")
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>'
           '<item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>'
           '<item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/>'
           '<item id="c2" href="text/two.xhtml" media-type="application/xhtml+xml"/>'
           '</manifest><spine><itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/></spine></package>')
    container = ('<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
                 '<rootfiles><rootfile full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
    return write_zip(path, {
        "mimetype": "application/epub+zip", "META-INF/container.xml": container, "OEBPS/book.opf": opf,
        "OEBPS/cover.xhtml": '<html><body><img src="cover.png"/></body></html>',
        "OEBPS/text/one.xhtml": chapter("The harbour", "Ships left at dawn."),
        "OEBPS/text/two.xhtml": chapter("The storm", "Waves rose over the pier &amp; the lighthouse."),
    })


# --- text, headings, tables, locations ----------------------------------------------

def test_docx_headings_lists_and_table_but_no_header_footer_or_comment(tmp_path):
    pages, notes = loaded(make_docx(tmp_path / "report.docx"))
    assert len(pages) == 1 and pages[0].page is None and notes == []
    text = pages[0].text
    assert text.startswith("# Annual report\n") and "\n## Budgets\n" in text
    assert "- hire two engineers\n\n- open the Lisbon office" in text
    assert "Project: Project Cygnus; Year: 2002; Budget: 2.5 million euros; Owner: Team cygnus" in text
    for hidden in ("Confidential running header", "Page footer text", "reviewer's remark"):
        assert hidden not in text


def test_docx_text_inside_a_content_control_is_read(tmp_path):
    import docx
    from docx.oxml import OxmlElement

    document = docx.Document()
    document.add_paragraph("Cover page title")
    document.add_paragraph("Body text.")
    control, content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
    cover = document.paragraphs[0]._p
    cover.addprevious(control)
    control.append(content)
    content.append(cover)
    document.save(tmp_path / "cover.docx")
    assert loaded(tmp_path / "cover.docx")[0][0].text == "Cover page title\n\nBody text.\n"


def test_docx_tracked_insertions_are_text_and_deletions_are_not(tmp_path):
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    paragraph = document.add_paragraph("The budget is ")
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    paragraph._p.append(parse_xml(f'<w:del {w} w:id="1" w:author="A"><w:r><w:delText>low</w:delText></w:r></w:del>'))
    paragraph._p.append(parse_xml(f'<w:ins {w} w:id="2" w:author="A"><w:r><w:t>high</w:t></w:r></w:ins>'))
    document.save(tmp_path / "tracked.docx")
    assert loaded(tmp_path / "tracked.docx")[0][0].text == "The budget is high\n"


def test_table_cell_shares_its_chunk_with_its_header_and_row_name(tmp_path):
    page = loaded(make_docx(tmp_path / "report.docx"))[0][0]
    chunks = chunk_page(page, count, max_tokens=20, overlap=4)
    assert len(chunks) > 3
    for name, year, money, _ in BUDGET[1:]:
        holding = [c for c in chunks if money in c.text]
        assert holding, money
        assert all(f"Budget: {money}" in c.text and f"Project: {name}" in c.text for c in holding)
        assert all(c.heading == "Annual report > Budgets" for c in holding)


def test_long_row_repeats_its_first_cell_in_each_paragraph():
    header = ["Name"] + [f"Column {i}" for i in range(40)]
    paragraphs = tables.table_paragraphs([header, ["Widget"] + [f"value {i}" for i in range(40)]])
    rows = paragraphs[1:]
    assert len(rows) > 1 and all(p.startswith("Name: Widget; ") for p in rows)
    assert all(len(p) <= tables.ROW_CHARS + 40 for p in rows)


def test_pptx_slides_titles_tables_and_notes(tmp_path):
    pages, _ = loaded(make_pptx(tmp_path / "deck.pptx"))
    by_location = {p.location: p for p in pages}
    assert list(by_location) == ["slide 1", "slide 1 notes", "slide 2"]
    body, spoken, scores = by_location.values()
    assert body.page == spoken.page == 1 and scores.page == 2
    assert body.text == "# Quarterly results\n\n- revenue grew\n\n- costs fell\n"
    assert "record month of March" in spoken.text and "record month" not in body.text
    assert spoken.offset == len(body.text)
    assert "Player: Bo; Score: 78" in scores.text
    notes_chunk = chunk_page(spoken, count, 40, 4)[0]
    assert notes_chunk.location == "slide 1 notes" and notes_chunk.heading == "Quarterly results"


def test_xlsx_sheets_as_located_pages_with_displayed_values(tmp_path):
    pages, notes = loaded(make_xlsx(tmp_path / "book.xlsx"))
    assert [(p.page, p.location) for p in pages] == [(1, "sheet Revenue"), (2, "sheet Staff")]
    assert "Quarter: Q2; Revenue: 2,469.00; Growth: 12.5%" in pages[0].text
    assert pages[1].text == "# Staff\n\nName | Role\n\nName: Ana; Role: lead\n"
    chunk = chunk_page(pages[0], count, 40, 4)[0]
    assert chunk.location == "sheet Revenue" and chunk.heading == "Revenue" and notes == []


def test_xlsx_formula_gives_its_cached_value_and_xlsm_macros_are_ignored(tmp_path):
    import openpyxl

    path = make_xlsx(tmp_path / "calc.xlsx")
    book = openpyxl.load_workbook(path)
    book["Revenue"]["D1"] = "Total"
    book["Revenue"]["D2"] = "=B2*2"
    book.save(path)
    # openpyxl does not calculate: write the cached value a spreadsheet program would have saved.
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    members["xl/worksheets/sheet1.xml"] = sheet.replace("<f>B2*2</f><v></v>", "<f>B2*2</f><v>2469</v>").encode()
    members["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0 not a real macro project"
    macro = write_zip(tmp_path / "calc.xlsm", members)
    pages, _ = loaded(macro)
    assert "Quarter: Q1; Revenue: 1,234.50; Growth: 12.5%; Total: 2469" in pages[0].text


def test_xlsx_declaring_the_largest_possible_sheet_is_read_as_stored(tmp_path):
    path = make_xlsx(tmp_path / "wide.xlsx")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    assert '<dimension ref="A1:C4"/>' in sheet
    sheet = sheet.replace('<dimension ref="A1:C4"/>', '<dimension ref="A1:XFD1048576"/>')
    members["xl/worksheets/sheet1.xml"] = sheet.replace("</sheetData>", '<row r="50000"><c r="A50000" t="inlineStr">'
                                                        "<is><t>last</t></is></c></row></sheetData>").encode()
    pages, notes = loaded(write_zip(path, members))
    assert pages[0].text.endswith("Quarter: Q3; Revenue: 3,703.50; Growth: 12.5%\n\nQuarter: last\n") and notes == []


def test_csv_and_tsv_rows_with_their_header(tmp_path):
    (tmp_path / "people.csv").write_text("name;city;age\nAna;Lisboa;31\nJosé;Porto;45\n", encoding="utf-8")
    (tmp_path / "people.tsv").write_bytes("name\tcity\nZoë\tGent\n".encode("cp1252"))
    csv_pages, _ = loaded(tmp_path / "people.csv")
    assert csv_pages[0].page is None and "name: José; city: Porto; age: 45" in csv_pages[0].text
    tsv_pages, _ = loaded(tmp_path / "people.tsv")
    assert "name: Zoë; city: Gent" in tsv_pages[0].text


def test_csv_long_text_fields_and_a_field_past_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "notes.csv"
    path.write_bytes(b"id,text\n1," + b"word " * 40_000 + b"\n2,short\x00cut\n3," + b"x" * 500_000 + b"\n4,never\n")
    text = loaded(path)[0][0].text
    assert "id: 1; text: word word" in text and "id: 2; text: shortcut" in text and "id: 4; text: never" in text
    monkeypatch.setattr(sheets, "FIELD_CHARS", 300_000)
    pages, notes = loaded(path)
    assert "id: 2; text: shortcut" in pages[0].text and "never" not in pages[0].text
    assert len(notes) == 1 and notes[0].startswith("malformed CSV, read up to line 4")


def test_large_sheet_comes_in_segments_and_stops_at_the_row_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "SEGMENT_CHARS", 2000)
    monkeypatch.setattr(tables, "MAX_ROWS", 300)
    path = tmp_path / "big.csv"
    path.write_text("id,label\n" + "".join(f"{i},row number {i}\n" for i in range(1000)), encoding="utf-8")
    pages, notes = loaded(path)
    assert len(pages) > 3 and all(p.text.count("\n\n") < 120 for p in pages)
    assert [p.offset for p in pages] == [sum(len(q.text) for q in pages[:i]) for i in range(len(pages))]
    text = "".join(p.text for p in pages)
    assert "id: 298; label: row number 298" in text and "row number 299" not in text
    assert notes and "stopped after 300 rows" in notes[0]


def test_odt_and_odp_like_word_and_powerpoint(tmp_path):
    odt = make_odf(tmp_path / "memo.odt", "text", (
        '<office:text><text:h text:outline-level="1">Memo</text:h>'
        '<text:p>Read this<office:annotation><text:p>a comment</text:p></office:annotation> soon.</text:p>'
        '<text:list><text:list-item><text:p>first point</text:p></text:list-item></text:list>'
        '<table:table>' + odf_row("City", "Rain") + odf_row("Bergen", "2250 mm") + "</table:table></office:text>"))
    text = loaded(odt)[0][0].text
    assert text == "# Memo\n\nRead this soon.\n\n- first point\n\nCity | Rain\n\nCity: Bergen; Rain: 2250 mm\n"
    odp = make_odf(tmp_path / "talk.odp", "presentation", (
        '<office:presentation><draw:page draw:name="p1">'
        '<draw:frame presentation:class="title"><draw:text-box><text:p>Opening</text:p></draw:text-box></draw:frame>'
        '<draw:frame presentation:class="outline"><draw:text-box><text:list><text:list-item><text:p>why now</text:p>'
        '</text:list-item></text:list></draw:text-box></draw:frame>'
        '<presentation:notes><draw:frame presentation:class="notes"><draw:text-box><text:p>Smile first.</text:p>'
        '</draw:text-box></draw:frame></presentation:notes></draw:page></office:presentation>'))
    pages, _ = loaded(odp)
    assert [(p.page, p.location) for p in pages] == [(1, "slide 1"), (1, "slide 1 notes")]
    assert pages[0].text == "# Opening\n\n- why now\n" and pages[1].text == "# Opening\n\nSmile first.\n"


def test_ods_sheets_stream_with_repeated_rows_and_columns(tmp_path):
    ods = make_odf(tmp_path / "stock.ods", "spreadsheet", (
        '<office:spreadsheet><table:table table:name="Fruit">' + odf_row("Fruit", "Count")
        + odf_row("pear", "12", repeat=2) + '<table:table-row table:number-rows-repeated="1048000"><table:table-cell/></table:table-row>'
        + '</table:table><table:table table:name="Empty"/><table:table table:name="Veg">' + odf_row("Veg", "Count")
        + odf_row("leek", "3") + "</table:table></office:spreadsheet>"))
    pages, _ = loaded(ods)
    assert [(p.page, p.location) for p in pages] == [(1, "sheet Fruit"), (3, "sheet Veg")]
    assert pages[0].text.count("Fruit: pear; Count: 12") == 2
    assert "Veg: leek; Count: 3" in pages[1].text


def test_epub_chapters_through_the_html_path(tmp_path):
    pages, _ = loaded(make_epub(tmp_path / "book.epub"))
    assert [(p.page, p.location) for p in pages] == [(1, "chapter 1"), (2, "chapter 2")]
    assert pages[0].text.startswith("# The harbour") and "pier & the lighthouse" in pages[1].text


# --- bad input -----------------------------------------------------------------------

def test_encrypted_and_old_binary_office_files(tmp_path):
    cfb = zipped.CFB_MAGIC + bytes(500)
    (tmp_path / "locked.docx").write_bytes(cfb + "EncryptionInfo".encode("utf-16-le") + bytes(100))
    (tmp_path / "old.xlsx").write_bytes(cfb + "Workbook".encode("utf-16-le"))
    assert reason(tmp_path / "locked.docx") == "encrypted; not supported"
    assert "old binary Office format" in reason(tmp_path / "old.xlsx")


def test_truncated_and_corrupt_zips(tmp_path):
    data = make_docx(tmp_path / "good.docx").read_bytes()
    (tmp_path / "cut.docx").write_bytes(data[: len(data) // 2])
    assert "not a readable zip package" in reason(tmp_path / "cut.docx")
    (tmp_path / "junk.pptx").write_bytes(b"PK\x03\x04" + bytes(300))
    assert "damaged PowerPoint presentation" in reason(tmp_path / "junk.pptx")
    members = {}
    with zipfile.ZipFile(tmp_path / "good.docx") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["word/document.xml"] = members["word/document.xml"][:200]  # cut XML, valid zip
    assert "damaged Word document" in reason(write_zip(tmp_path / "bad.docx", members))


def test_file_of_the_wrong_type_is_named(tmp_path):
    make_xlsx(tmp_path / "sheet.docx")
    assert reason(tmp_path / "sheet.docx") == "not a Word document: the file holds an Excel workbook (.xlsx); rename it"
    make_docx(tmp_path / "doc.pptx")
    assert "holds a Word document" in reason(tmp_path / "doc.pptx")
    make_odf(tmp_path / "text.ods", "text", "<office:text/>")
    assert reason(tmp_path / "text.ods") == "not an OpenDocument spreadsheet: the file holds OpenDocument text"


def test_zip_bombs_are_refused_before_parsing(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\0" * (24 << 20))
    assert "zip bomb? word/document.xml unpacks" in reason(tmp_path / "bomb.docx")
    monkeypatch.setattr(zipped, "MAX_XML", 10_000)
    assert "MB of XML to parse" in reason(make_pptx(tmp_path / "deck.pptx"))
    monkeypatch.setattr(zipped, "MAX_UNPACKED", 10_000)
    assert "too large to read safely: the package unpacks to" in reason(make_pptx(tmp_path / "deck.pptx"))
    monkeypatch.setattr(zipped, "MAX_MEMBERS", 5)
    assert "entries in the package" in reason(make_epub(tmp_path / "book.epub"))


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
          '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
          "<w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>")


@pytest.mark.parametrize("name, part", [("doc.docx", "word/document.xml"), ("book.xlsx", "xl/sharedStrings.xml"),
                                        ("memo.odt", "content.xml"), ("book.epub", "OEBPS/book.opf")])
def test_xml_entity_declarations_are_refused(tmp_path, name, part):
    path = tmp_path / name
    {"docx": make_docx, "xlsx": make_xlsx, "epub": make_epub}.get(path.suffix[1:], lambda p: make_odf(p, "text", ""))(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[part] = LAUGHS
    assert reason(write_zip(path, members)) == f"XML with a DTD or entity declarations ({part}); refused for safety"


def test_epub2_doctype_without_entities_is_read(tmp_path):
    path = make_epub(tmp_path / "old.epub")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["OEBPS/toc.ncx"] = ('<?xml version="1.0"?><!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" '
                                '"http://www.daisy.org/z3986/2005/ncx-2005-1.dtd"><ncx/>')
    members["OEBPS/book.opf"] = b'<?xml version="1.0"?><!DOCTYPE package>' + members["OEBPS/book.opf"].split(b"?>", 1)[1]
    pages, _ = loaded(write_zip(path, members))
    assert len(pages) == 2


def test_dtd_hidden_behind_a_comment_is_found(tmp_path):
    path = make_docx(tmp_path / "doc.docx")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["word/document.xml"] = LAUGHS.replace("<!DOCTYPE", "<!-- <w:p> --><!DOCTYPE")
    assert "refused for safety" in reason(write_zip(path, members))


def test_empty_documents_fail_as_empty(tmp_path):
    import docx

    docx.Document().save(tmp_path / "blank.docx")
    (tmp_path / "blank.csv").write_text("\n,,\n", encoding="utf-8")
    assert reason(tmp_path / "blank.docx") == reason(tmp_path / "blank.csv") == "empty file (no text)"


def test_pictures_and_embedded_objects_are_ignored(tmp_path):
    from PIL import Image
    from pptx import Presentation
    from pptx.util import Inches

    Image.new("RGB", (40, 20), "white").save(tmp_path / "logo.png")
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Logo"
    slide.shapes.add_picture(str(tmp_path / "logo.png"), Inches(1), Inches(2))
    deck.save(tmp_path / "pic.pptx")
    pages, _ = loaded(tmp_path / "pic.pptx")
    assert [p.text for p in pages] == ["# Logo\n"]


# --- through ingest ------------------------------------------------------------------

def test_folder_ingest_stores_good_files_reports_bad_ones_and_reingest_is_a_no_op(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_docx(docs / "report.docx")
    make_pptx(docs / "deck.pptx")
    make_xlsx(docs / "book.xlsx")
    make_epub(docs / "book.epub")
    (docs / "locked.xlsx").write_bytes(zipped.CFB_MAGIC + "EncryptionInfo".encode("utf-16-le"))
    (docs / "cut.pptx").write_bytes((docs / "deck.pptx").read_bytes()[:900])
    s = settings(tmp_path)
    first = ingest([docs], settings=s, embedder=HashEmbedder())
    assert sorted(first.added) == ["book.epub", "book.xlsx", "deck.pptx", "report.docx"]
    assert {f.path: f.reason for f in first.failed} == {
        "locked.xlsx": "encrypted; not supported",
        "cut.pptx": "damaged PowerPoint presentation: not a readable zip package (truncated or corrupt)",
    }
    embedder = HashEmbedder()
    second = ingest([docs], settings=s, embedder=embedder)
    assert sorted(second.unchanged) == sorted(first.added)
    assert second.chunks_embedded == 0 and embedder.embedded == [] and second.chunks == first.chunks
