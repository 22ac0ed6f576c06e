"""Distributed ingest: chunks/s of `ingest --engine ray` against the local engine, and what
a second node adds.

A temporary folder holds the first N SciFact abstracts (title, blank line, abstract), one
.txt file each (700: about 2,000 chunks). In one run, each into a fresh FAISS index, with
the real default embedder (ONNX Runtime, no embedding cache: every chunk is embedded):

  local      ingest() with the local engine (the reference)
  ray-local  --engine ray on a Ray instance of this machine, sized to it (all its cores)
  1 node     --engine ray on a simulated cluster (ray.cluster_utils.Cluster): a head with
             no CPUs for work and one one-CPU worker node
  2 nodes    the same with two one-CPU worker nodes

A simulated node must not borrow the machine's other cores: for the cluster runs the bench
process, and with it the cluster it starts (head, nodes, workers) and the driver, is pinned
to as many cores as there are worker nodes (os.sched_setaffinity; it needs that many
cores). Unpinned, one one-CPU node gets a spare core for Ray's own processes and the
driver, two get none, and the ratio measures the machine, not the scaling.

Each figure is the wall time of ingest() (planning, loading, chunking, embedding, storing,
the commit; Ray's actors load their embedder inside it); starting Ray or the cluster is
not timed. Targets: ray-local / local >= 0.8, 2 nodes / 1 node >= 1.7 (PASS/FAIL printed,
exit code 0). On a machine with two cores, two one-CPU nodes and the driver share them: the
second ratio is only meaningful when the cores are otherwise idle (the load average is
printed).

It also measures the driver's own cost per chunk on the FAISS path (the chunks and
vectors of the index just built written again through one store transaction, and the
commit): the rate no number of nodes can pass while the vectors come back to the driver.

    python bench/ray_ingest.py [--docs 700] [--skip-cluster]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine  # noqa: E402
from bench.ingest_throughput import write_docs  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.cpu import usable_cores  # noqa: E402
from rag.ingestion import ingest  # noqa: E402

LOCAL_TARGET = 0.8
SCALE_TARGET = 1.7


def timed(docs: Path, settings: Settings) -> tuple[float, int]:
    t = time.perf_counter()
    report = ingest([docs], settings=settings)
    seconds = time.perf_counter() - t
    if report.failed or not report.chunks_embedded:
        raise SystemExit(f"ingest failed: {report.failed[:3]}")
    return seconds, report.chunks_embedded


def driver_store_rate(settings: Settings) -> float:
    """Chunks/s of the driver's share on the FAISS path: add_chunks, add_pages, the commit."""
    from rag.manifest import new_manifest
    from rag.stores import backend_for, transaction

    store = backend_for(settings).open()
    try:
        batches = list(store.export())
        pages = list(store.pages())
        manifest = store.manifest
    finally:
        store.close()
    target = replace(settings, index_dir=settings.index_dir.with_name("store-only"))
    chunks = sum(len(ids) for ids, _, _ in batches)
    t = time.perf_counter()
    with transaction(backend_for(target)) as tx:
        writer = tx.begin(new_manifest(manifest.embedder, manifest.chunking), fresh=True)
        for _, batch, vectors in batches:
            writer.add_chunks(batch, vectors)
        writer.add_pages(pages)
        for source, record in manifest.files.items():
            writer.finish_file(source, record)
        tx.commit()
    return chunks / (time.perf_counter() - t)


def cluster_run(docs: Path, settings: Settings, nodes: int, python_path: str) -> tuple[float, int]:
    import ray
    from ray.cluster_utils import Cluster

    os.environ["PYTHONPATH"] = python_path  # the nodes' workers import rag from this checkout
    every = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, every[:nodes])  # the cluster's processes inherit it (see the docstring)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                           "object_store_memory": 200 << 20})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, object_store_memory=200 << 20)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        return timed(docs, replace(settings, engine="ray", ray_address=cluster.address))
    finally:
        ray.shutdown()
        cluster.shutdown()
        os.sched_setaffinity(0, every)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=700, help="SciFact abstracts to ingest (default 700)")
    parser.add_argument("--skip-cluster", action="store_true", help="only local and ray-local")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-ray-"))
    python_path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
    try:
        docs = tmp / "docs"
        docs.mkdir()
        size = write_docs(docs, args.docs)
        base = Settings(index_dir=tmp / "local", embed_cache=False, cache_dir=Settings().cache_dir)
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; ray {ray.__version__}")
        print(f"input: {args.docs} SciFact abstracts, {size / 1e6:.2f} MB")
        timed(docs, replace(base, index_dir=tmp / "warm-up"))  # the ONNX export and the page cache, once
        rates: dict[str, float] = {}

        seconds, chunks = timed(docs, base)
        rates["local"] = chunks / seconds
        print(f"  local engine        {seconds:6.1f} s  {chunks} chunks  {rates['local']:6.1f} chunks/s", flush=True)
        store_rate = driver_store_rate(base)
        print(f"  driver store+commit {store_rate:8.0f} chunks/s (FAISS; the driver's share per chunk)", flush=True)

        ray.init(num_cpus=usable_cores(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": python_path}})
        try:
            seconds, chunks = timed(docs, replace(base, index_dir=tmp / "ray-local", engine="ray"))
        finally:
            ray.shutdown()
        rates["ray-local"] = chunks / seconds
        print(f"  ray, this machine   {seconds:6.1f} s  {chunks} chunks  {rates['ray-local']:6.1f} chunks/s",
              flush=True)
        if not args.skip_cluster and usable_cores() < 2:
            print("  (the cluster runs need two usable cores: skipped)")
            args.skip_cluster = True
        if not args.skip_cluster:
            for nodes in (1, 2):
                seconds, chunks = cluster_run(docs, replace(base, index_dir=tmp / f"nodes-{nodes}"), nodes,
                                              python_path)
                rates[f"{nodes} node"] = chunks / seconds
                print(f"  ray, {nodes} one-CPU node{'s' if nodes > 1 else ' '} {seconds:6.1f} s  {chunks} chunks  "
                      f"{chunks / seconds:6.1f} chunks/s  (pinned to {nodes} core{'s' if nodes > 1 else ''})", flush=True)

        ratio = rates["ray-local"] / rates["local"]
        print(f"ray on this machine / local: {ratio:.2f}  target >= {LOCAL_TARGET}: "
              f"{'PASS' if ratio >= LOCAL_TARGET else 'FAIL'}")
        if not args.skip_cluster:
            scale = rates["2 node"] / rates["1 node"]
            print(f"2 nodes / 1 node: {scale:.2f}  target >= {SCALE_TARGET}: {'PASS' if scale >= SCALE_TARGET else 'FAIL'}"
                  f"  (load average now {os.getloadavg()[0]:.1f})")
            per_node = rates["1 node"]
            print(f"per node {per_node:.1f} chunks/s; the driver stores {store_rate:.0f} chunks/s: FAISS's ceiling is "
                  f"about {store_rate / per_node:.0f} nodes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
