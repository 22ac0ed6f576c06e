"""`--engine ray` on a multi-node cluster simulated on this machine (Ray's own
`ray.cluster_utils.Cluster`: a head without CPUs for work and two one-CPU worker nodes).
A worker node is removed while the pipeline runs; Ray runs the lost tasks again, restarts
the lost actor elsewhere and rebuilds the lost blocks, and the index is still exactly the
one a local ingest builds, on FAISS (vectors back to the driver) and on a Milvus server
(the actors write their rows, and a batch run again must not store them twice). The
cluster is a separate Ray, not this process's: the driver joins it by address, as
`--ray-address` does."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from fakes import HashEmbedder, SlowHashEmbedder
from test_ray_ingest import assert_same_index, milvus_server  # noqa: F401  (a fixture)

from rag import Settings, ingest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    assert not ray.is_initialized(), "another Ray is still running in this process"
    path = os.pathsep.join([str(PROJECT), str(PROJECT / "tests"), os.environ.get("PYTHONPATH", "")])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", path)  # the nodes' workers import rag and `fakes` from this checkout
        mp.setenv("RAY_DISABLE_DOCKER_CPU_WARNING", "1")
        small = {"object_store_memory": 100 << 20, "include_dashboard": False}
        nodes = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **small})
        for _ in range(2):
            nodes.add_node(num_cpus=1, object_store_memory=100 << 20)
        nodes.wait_for_nodes()
        ray.init(address=nodes.address, log_to_driver=False)
        try:
            yield nodes
        finally:
            ray.shutdown()
            nodes.shutdown()


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """The store settings of each run: FAISS, or a Milvus server (local and Ray runs in
    collections of their own)."""
    if request.param == "faiss":
        return {}
    return {"store": "milvus", "milvus_uri": request.getfixturevalue("milvus_server")}


@pytest.mark.parametrize("store", ["faiss", "milvus"], indirect=True)
def test_a_node_lost_midway_costs_a_retry_not_a_wrong_index(cluster, tmp_path: Path, store: dict):
    nodes = cluster
    if len(nodes.worker_nodes) < 2:  # the previous run took one away
        nodes.add_node(num_cpus=1, object_store_memory=100 << 20)
        nodes.wait_for_nodes()
    workers = list(nodes.worker_nodes)
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted((PROJECT / "corpus").glob("*.[mt][dx]*")):  # the Markdown and text files: quick to load
        shutil.copy(path, docs / path.name)
    local = Settings.load({"index_dir": tmp_path / "local", "milvus_collection": "local", **store})
    on_ray = replace(local, index_dir=tmp_path / "ray", milvus_collection="on_ray", engine="ray",
                     ray_address=nodes.address)
    ingest([docs], settings=local, embedder=HashEmbedder())
    assert sorted(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]) == [0, 1, 1]
    after: list[str] = []

    def remove_a_node(event) -> None:
        if event.stage != "load":
            return
        if event.done == 1 and len(nodes.worker_nodes) == 2:
            nodes.remove_node(workers[1], allow_graceful=False)  # a crash, not a drain
        elif len(nodes.worker_nodes) == 1:
            after.append(event.detail)

    log = tmp_path / "embedded.tsv"
    lost = workers[1].node_id
    report = ingest([docs], settings=on_ray, embedder=SlowHashEmbedder(0.05, log=log), progress=remove_a_node)
    assert len(nodes.worker_nodes) == 1 and len(after) >= 5  # most files came back after the loss
    assert report.failed == () and len(report.added) == len(list(docs.iterdir()))
    assert_same_index(local, on_ray, ids=not store)  # Milvus workers take ids as their batches finish
    calls = [line.split("\t", 2) for line in log.read_text(encoding="utf-8").splitlines()]
    assert any(node == lost for node, _, _ in calls), "the removed node ran nothing: the test lost no work"
    assert len([c for c in calls if c[1] == "embed"]) >= report.chunks_embedded
