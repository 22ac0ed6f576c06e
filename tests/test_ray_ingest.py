"""`rag ingest --engine ray` on a Ray instance started by this module (two CPUs, no
dashboard, a small object store): the index it builds is the one a local ingest builds
(same files, chunks, pages, spans and ids; vectors within 1e-5 with the real ONNX embedder,
on FAISS and on milvus-lite), bad files fail with the local reasons, files travel as bytes
when the workers cannot see them, and an interrupted Ray ingest converges with a local one.
The multi-node fault test is in tests/test_ray_cluster.py."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from made_files import bad_pdfs, write
from fakes import HashEmbedder
from typer.testing import CliRunner

from rag import Settings, ingest
from rag.cli import EXIT_ERROR, EXIT_FILES_FAILED, app
from rag.errors import ConfigError
from rag.stores import backend_for

ray = pytest.importorskip("ray")  # the [ray] extra; requirements-test.txt installs it, so CI runs these

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT / "corpus"
runner = CliRunner()


def snapshot(settings: Settings, ids: bool = True) -> tuple[dict, list, list, np.ndarray]:
    """Everything an index holds, in a comparable form: its files (hash, chunks, pages),
    chunks with ids (or without: then in file and span order) and spans, pages, and the
    vectors in the chunks' order."""
    store = backend_for(settings).open()
    try:
        files = {s: (r.sha256, r.chunks, r.pages) for s, r in store.files().items()}
        chunks, vectors = [], []
        for got, batch, vecs in store.export():
            chunks += [(i if ids else 0, c.source, c.page if c.page is not None else -1, c.start, c.end, c.heading,
                        c.text, c.tokens, c.location, c.ocr) for i, c in zip(got, batch)]
            vectors.append(vecs)
        pages = sorted((p.source, p.page if p.page is not None else -1, p.offset, p.text) for p in store.pages())
    finally:
        store.close()
    order = sorted(range(len(chunks)), key=lambda i: chunks[i])
    return files, [chunks[i] for i in order], pages, np.concatenate(vectors)[order]


def assert_same_index(a: Settings, b: Settings, tolerance: float = 0.0, ids: bool = True) -> None:
    files_a, chunks_a, pages_a, vectors_a = snapshot(a, ids)
    files_b, chunks_b, pages_b, vectors_b = snapshot(b, ids)
    assert files_a == files_b and chunks_a == chunks_b and pages_a == pages_b
    assert vectors_a.shape == vectors_b.shape and len(chunks_a) > 0
    assert float(np.max(np.abs(vectors_a - vectors_b))) <= tolerance


def with_bad_files(root: Path) -> Path:
    """The sample corpus plus broken, encrypted and damaged PDFs: failures and notes."""
    docs = root / "docs"
    shutil.copytree(CORPUS, docs)
    write(docs, bad_pdfs())
    (docs / "empty.md").write_text("")
    return docs


def test_an_unreachable_cluster_is_a_clear_error_before_anything_is_written(tmp_path: Path):
    assert not ray.is_initialized(), "this test must run before the module's Ray instance starts"
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    index = tmp_path / "index"
    result = runner.invoke(app, ["ingest", str(CORPUS), "--engine", "ray", "--ray-address", f"ray://127.0.0.1:{port}",
                                 "--index-dir", str(index), "-q"])
    assert result.exit_code == EXIT_ERROR
    assert f"cannot reach the Ray cluster at ray://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not any(index.glob("gen-*")) and not (index / "CURRENT").exists()
    assert not ray.is_initialized()


def test_without_ray_installed_engine_ray_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path, hash_models: None):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    result = runner.invoke(app, ["ingest", str(next(CORPUS.glob("*.md"))), "--engine", "ray", "-q"])
    assert result.exit_code == EXIT_ERROR
    assert "pip install -e '.[ray]'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_engine_settings_come_from_flags_env_and_rag_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert Settings.load().engine == "local" and Settings.load().ray_address is None
    (tmp_path / "rag.toml").write_text('engine = "ray"\nray_address = "auto"\n')
    assert (Settings.load().engine, Settings.load().ray_address) == ("ray", "auto")
    monkeypatch.setenv("RAG_RAY_ADDRESS", "ray://head:10001")
    assert Settings.load().ray_address == "ray://head:10001"
    assert Settings.load({"engine": "local"}).engine == "local"
    with pytest.raises(ConfigError, match="engine .*local or ray"):
        Settings(engine="spark")
    with pytest.raises(ConfigError, match="ray_address"):
        Settings(ray_address="http://head")


def test_help_and_a_local_ingest_import_no_ray():
    import subprocess

    code = (
        "import sys\nfrom rag.cli import app\ntry:\n    app(['ingest', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'rag.engines.ray'))), "
        "file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One small Ray instance for the module; its workers import `fakes` (the hash embedder)."""
    path = os.pathsep.join([str(PROJECT), str(PROJECT / "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 << 20, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "RAG_EMBED_CACHE": "0"}})
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_ray_builds_the_index_a_local_ingest_builds_with_the_real_embedder(local_ray: None, tmp_path: Path,
                                                                            store: str):
    local = Settings.load({"index_dir": tmp_path / "local", "store": store})
    on_ray = replace(local, index_dir=tmp_path / "ray", engine="ray")
    want = ingest([CORPUS], settings=local)
    got = ingest([CORPUS], settings=on_ray)
    assert got.added == want.added and got.failed == want.failed and got.chunks == want.chunks
    assert got.chunks_embedded == want.chunks_embedded == want.chunks > 50
    assert_same_index(local, on_ray, tolerance=1e-5)
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_bad_files_fail_on_ray_with_the_local_reasons(local_ray: None, tmp_path: Path, hash_models: None):
    docs = with_bad_files(tmp_path)
    results = {}
    for engine in ("local", "ray"):
        result = runner.invoke(app, ["ingest", str(docs), "--engine", engine, "--index-dir", str(tmp_path / engine),
                                     "--json"])
        assert result.exit_code == EXIT_FILES_FAILED, result.stderr
        results[engine] = result.stdout
    import json

    local, on_ray = (json.loads(results[e]) for e in ("local", "ray"))
    assert local["failed"] and on_ray["failed"] == local["failed"] and on_ray["paths"] == local["paths"]
    assert on_ray["warnings"] == local["warnings"] and on_ray["chunks"] == local["chunks"]
    settings = Settings.load({"index_dir": tmp_path / "local"})
    assert_same_index(settings, replace(settings, index_dir=tmp_path / "ray"))


def test_files_shipped_as_bytes_give_the_same_index(local_ray: None, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    from rag.engines import ray as engine

    shipped = []
    monkeypatch.setattr(engine.RayEngine, "_ship_bytes", lambda self, items: shipped.append(len(items)) or True)
    monkeypatch.setattr(engine, "WINDOW_BYTES", 200_000)  # several pipelines, one after the other
    docs = with_bad_files(tmp_path)
    local = Settings.load({"index_dir": tmp_path / "local"})
    on_ray = replace(local, index_dir=tmp_path / "ray", engine="ray")
    want = ingest([docs], settings=local, embedder=HashEmbedder())
    got = ingest([docs], settings=on_ray, embedder=HashEmbedder())
    assert shipped == [len(want.added) + len(want.failed)]
    assert got.failed == want.failed and got.warnings == want.warnings
    assert_same_index(local, on_ray)


def test_the_probe_says_whether_a_node_sees_the_files(tmp_path: Path):
    from rag.engines.ray_work import probe

    f = tmp_path / "a.txt"
    f.write_text("hello")
    assert probe([(str(f), 5)]) and not probe([(str(f), 6)]) and not probe([(str(tmp_path / "gone.txt"), 5)])


def test_an_interrupted_ray_ingest_then_a_local_one_converges(local_ray: None, tmp_path: Path):
    docs = with_bad_files(tmp_path)
    local = Settings.load({"index_dir": tmp_path / "local"})
    on_ray = replace(local, index_dir=tmp_path / "ray", engine="ray")
    ingest([docs], settings=local, embedder=HashEmbedder())

    def stop_midway(event) -> None:
        if event.stage == "load" and event.done == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest([docs], settings=on_ray, embedder=HashEmbedder(), progress=stop_midway)
    assert not (tmp_path / "ray" / "CURRENT").exists()  # nothing was committed
    assert ray.is_initialized()
    report = ingest([docs], settings=replace(on_ray, engine="local"), embedder=HashEmbedder())
    assert report.added and not report.updated
    assert_same_index(local, on_ray)


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """A Milvus server on an ephemeral local port (milvus-lite's own gRPC server, in a
    process of its own): to the workers, a server they reach by URL like any other."""
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the Milvus server did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_workers_write_straight_to_a_milvus_server(local_ray: None, tmp_path: Path, milvus_server: str,
                                                    monkeypatch: pytest.MonkeyPatch):
    from rag.stores.milvus_write import MilvusWriter

    driver_rows: list[str] = []
    real_insert = MilvusWriter._insert
    monkeypatch.setattr(MilvusWriter, "_insert", lambda self, name, rows: driver_rows.append(name) or
                        real_insert(self, name, rows))
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)
    local = Settings.load({"store": "milvus", "milvus_uri": milvus_server, "milvus_collection": "local"})
    on_ray = replace(local, milvus_collection="on_ray", engine="ray")
    for _ in range(2):  # a new index, then a sync: one file changed, one removed
        want = ingest([docs], settings=local, embedder=HashEmbedder())
        got = ingest([docs], settings=on_ray, embedder=HashEmbedder())
        assert (got.added, got.updated, got.removed, got.chunks) == (want.added, want.updated, want.removed,
                                                                     want.chunks)
        assert_same_index(local, on_ray, ids=False)  # ids are handed out as batches finish
        (docs / "evaluation.txt").write_text("Evaluation, rewritten: recall at five and a held-out question set.\n")
        (docs / "tokenization.md").unlink(missing_ok=True)
    ray_rows = [name for name in driver_rows if name.startswith("on_ray_")]
    assert ray_rows == [], "the driver wrote rows the workers should have written"
    assert any(name.startswith("local_chunks_") for name in driver_rows)


def test_delivered_vectors_must_match_the_chunks_being_stored():
    from rag.engines.ray import Delivered

    delivered = Delivered(HashEmbedder())
    delivered.put(["a", "b"], np.eye(2, 64, dtype=np.float32))
    delivered.put(["c"], None)  # stored by the workers: stand-ins
    assert np.array_equal(delivered.embed(["a"]), np.eye(1, 64, dtype=np.float32))
    assert delivered.embed(["b", "c"]).shape == (2, 64)
    delivered.put(["d"], np.zeros((1, 64), dtype=np.float32))
    with pytest.raises(RuntimeError, match="do not match"):
        delivered.embed(["e"])
    with pytest.raises(RuntimeError, match="2 vectors for 1 chunks"):
        delivered.put(["f"], np.zeros((2, 64), dtype=np.float32))


def test_shipped_files_go_in_windows_of_bounded_bytes(tmp_path: Path):
    from rag.engines.ray import _windows

    items = []
    for i, size in enumerate([40, 40, 40, 100, 10]):
        path = tmp_path / f"{i}.txt"
        path.write_bytes(b"x" * size)
        items.append((path, path.name))
    assert [[s for _, s in w] for w in _windows(items, 90)] == [["0.txt", "1.txt"], ["2.txt"], ["3.txt"], ["4.txt"]]
    assert list(_windows(items, None)) == [items] and list(_windows([], None)) == []


def test_damaged_documents_fail_one_by_one_on_ray(local_ray: None, tmp_path: Path):
    """Fuzzed copies of real documents (tests/fuzz_docs.py): whatever a parser raises in a
    Ray worker is that file's failure, as in a local ingest, and the rest is stored."""
    from fuzz_docs import cases

    docs = write(tmp_path / "docs", {**cases(16, skip_images=True), "ok.md": b"# Owls\n\nOwls hunt at night.\n"})
    local = Settings.load({"index_dir": tmp_path / "local", "file_timeout": 20})
    want = ingest([docs], settings=local, embedder=HashEmbedder())
    got = ingest([docs], settings=replace(local, index_dir=tmp_path / "ray", engine="ray"), embedder=HashEmbedder())
    assert want.failed and "ok.md" in want.added
    assert got.added == want.added and got.failed == want.failed
