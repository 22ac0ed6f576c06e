"""The shipped question sets are sound: every accepted answer is written in the file
(and PDF page) named as its source, ids are unique, and the counts the README gives hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.evaluate import load_qa
from rag.loaders import load

PROJECT = Path(__file__).resolve().parents[1]
SETS = {"corpus_questions.jsonl": (78, 14), "heldout_questions.jsonl": (30, 10)}


def page_texts(name: str) -> dict[int | None, str]:
    pages, _ = load(PROJECT / "corpus" / name, name)
    out: dict[int | None, str] = {}
    for p in pages:
        out[p.page] = out.get(p.page, "") + p.text
    return out


@pytest.mark.parametrize("name", sorted(SETS))
def test_question_set_answers_are_in_their_sources(name: str):
    items = load_qa(PROJECT / "bench" / name)
    assert len({i["id"] for i in items}) == len(items)
    assert (sum(i["answerable"] for i in items), sum(not i["answerable"] for i in items)) == SETS[name]
    texts: dict[str, dict[int | None, str]] = {}
    for item in items:
        if not item["answerable"]:
            assert item["answers"] == [] and item["sources"] == []
            continue
        assert item["answers"] and item["sources"], item["id"]
        for source, page in zip(item["sources"], item.get("pages") or [None] * len(item["sources"])):
            pages = texts.setdefault(source, page_texts(source))
            text = " ".join((pages[page] if page is not None else " ".join(pages.values())).split()).lower()
            assert any(" ".join(a.split()).lower() in text for a in item["answers"]), (item["id"], source, page)
