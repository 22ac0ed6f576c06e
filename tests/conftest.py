"""Shared fixtures: every test runs in its own tmp_path with no RAG_* settings leaking in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from fakes import EchoGenerator, HashEmbedder

# The team's shared real-world data (../shared/data from the project root); always present in CI.
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(__file__).resolve().parent / "data"
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def rag_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache folder for the whole session (set before module fixtures build their
    indexes): the embedder's ONNX export is made once, and never in the user's cache."""
    path = tmp_path_factory.mktemp("rag-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_CACHE_DIR", str(path))
        mp.setenv("RAG_EMBED_CACHE", "0")  # each test sees its own embedder calls (see isolated)
        yield path


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rag_cache: Path) -> Path:
    """No RAG_* variable of the caller, the index under tmp_path, the session's cache, and
    no rag.toml of the checkout."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(rag_cache))
    # Each test sees its own embedder calls; tests/test_embed_cache.py turns the cache on.
    monkeypatch.setenv("RAG_EMBED_CACHE", "0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def echo_generator() -> EchoGenerator:
    return EchoGenerator()


@pytest.fixture
def hash_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every embedder the library builds itself (ingest, Index) is the hash embedder: for
    CLI tests, which cannot inject one."""
    for module in ("rag.ingestion", "rag.index"):
        monkeypatch.setattr(f"{module}.make_embedder", lambda *a, **k: HashEmbedder())


SHARED_MISSING = "needs the shared public data in ../shared/data beside the checkout (not in a clone)"
# CI (.ci/run) sets RAG_REQUIRE_SHARED=1: there ../shared is present, and a shared-data test
# that would skip fails instead. Read once here: the `isolated` fixture clears RAG_* variables.
REQUIRE_SHARED = os.environ.get("RAG_REQUIRE_SHARED") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared_data: uses ../shared/data; skipped (naming it) where it is missing")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked shared_data skip, with a reason naming ../shared/data, in a clone
    without it; under RAG_REQUIRE_SHARED=1 they run and fail instead."""
    if SHARED.is_dir() or REQUIRE_SHARED:
        return
    for item in items:
        if item.get_closest_marker("shared_data"):
            item.add_marker(pytest.mark.skip(reason=f"{SHARED_MISSING}: {SHARED}"))


def shared(*parts: str) -> Path:
    """A file of the shared data. Where ../shared/data is missing (a fresh clone) the test
    is skipped, naming the path, unless RAG_REQUIRE_SHARED=1 (CI); a file missing from a
    shared data folder that is there fails the test."""
    path = SHARED.joinpath(*parts)
    if not SHARED.is_dir() and not REQUIRE_SHARED:
        pytest.skip(f"{SHARED_MISSING}: {path}")
    assert path.is_file(), f"shared data file {path} is missing"
    return path
