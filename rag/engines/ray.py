"""The Ray engine (`rag ingest --engine ray`): new and changed files are loaded, chunked
and embedded on a Ray cluster; the driver plans and commits as for a local ingest.

The work is one Ray Data pipeline per window of files: rows (one per file) -> load and
chunk (CPU tasks, `ray_work.load_file`) -> embed (a pool of actors, one per CPU, each
loading the embedder once: `ray_work.EmbedFiles`) -> back to the driver in
plan order (`preserve_order`), where each file's `Loaded` joins the driver's usual loop
and its vectors are handed to the batcher by `Delivered`, an embedder that answers with
them. The store therefore sees the same calls, in the same order, as for a local ingest:
the same chunk ids, and vectors equal to the local ones within float rounding. Ray
retries the tasks and restarts the actors a lost node was running. With a Milvus server
the actors write the rows themselves and no vectors come back (rag/engines/ray_milvus.py).

How files reach the workers: with a Ray instance started here (no `ray_address`) they
share this machine, so rows carry paths. With a cluster (`auto`, `HOST:PORT`,
`ray://HOST:PORT`), one small task per node checks that it sees a sample of the planned
files at the same paths with the same sizes; if every node does (a shared filesystem),
rows carry paths, otherwise the driver ships each file's bytes through the object store,
in windows of at most WINDOW_BYTES so the driver and the store never hold more.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import MissingDependencyError, RagError
from ..loaders import read_error_reason
from . import ray_milvus
from .ray_milvus import writes_direct
from .ray_work import EmbedJob, LoadJob, embed_files, load_file, probe

if TYPE_CHECKING:
    from ..config import Settings
    from ..discover import Input
    from ..embedders import Embedder
    from ..prefetch import Loaded, LoadFn
    from ..stores import Writer

log = logging.getLogger(__name__)

WINDOW_BYTES = 64 << 20  # most file bytes one pipeline ships through the object store
PROBE_FILES = 8  # planned files each node is asked about
CONNECT_TIMEOUT = 10.0  # seconds for a cluster's port to answer before connecting is given up
FILES_PER_BATCH = 16  # at most, per embedder actor call: fewer, bigger calls cost Ray Data less per chunk
BATCHES_PER_ACTOR = 4  # at least, when there are few files: every actor gets work
FILES_PER_BLOCK = 32  # at most, per load task: small blocks keep the embedders fed and make a retry cheap
LOAD_CPUS = 0.25  # a load task's CPU share: embedding is most of the cost, so actors get the rest
EMBED_CPUS = 0.75


def import_ray() -> Any:
    """The ray module (with Ray Data), or a one-line error naming what to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (the pipeline's library; a bare `pip install ray` lacks it)
    except ImportError:
        raise MissingDependencyError(
            "--engine ray needs Ray with Ray Data: pip install -e '.[ray]' in a clone of rag "
            "(or pip install 'ray[data]')"
        ) from None
    return ray


def _reachable(address: str) -> None:
    """Fail fast, with the address, when nothing listens at HOST:PORT (Ray itself may retry for a minute)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise RagError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start it "
                       "(ray start --head on its head node) or fix --ray-address / RAG_RAY_ADDRESS") from None


class Delivered:
    """An Embedder that answers with the vectors the workers computed: `put` them in file
    order, and `embed` returns them for the same texts in the same order."""

    def __init__(self, like: "Embedder") -> None:
        self.name, self.dim, self.max_tokens = like.name, like.dim, like.max_tokens
        self._like = like
        self._queue: deque[tuple[str, np.ndarray]] = deque()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._like.count_tokens(texts)

    def put(self, texts: Sequence[str], vectors: np.ndarray | None) -> None:
        """The vectors of these texts; None: the workers stored them (Milvus), stand-ins will do."""
        if vectors is None:
            vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) != len(vectors):
            raise RuntimeError(f"a Ray worker returned {len(vectors)} vectors for {len(texts)} chunks")
        self._queue.extend(zip(texts, vectors))

    def embed(self, texts: Sequence[str], batch_size: int = 32,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if not self._queue or self._queue[0][0] != text:
                raise RuntimeError("the vectors from Ray do not match the chunks being stored")
            out[i] = self._queue.popleft()[1]
        if progress and texts:
            progress(len(texts))
        return out


@dataclass
class RayWork:
    """One ingest's files on the cluster; `results` streams them back in plan order."""

    ray: Any
    embedder: Delivered
    writer: "Writer"
    load: LoadJob
    embed: EmbedJob
    ship_bytes: Callable[[Sequence[tuple[Path, str]]], bool]
    running: list[Any] = field(default_factory=list)
    finish: Callable[[], None] = lambda: None  # once every file is back

    def results(self, items: Iterable[tuple[Path, str]]) -> Iterator["Loaded | None"]:
        items = list(items)
        ship = bool(items) and self.ship_bytes(items)
        log.info("ray: %d files, %s", len(items), "bytes through the object store" if ship else "paths")
        start = 0
        for window in _windows(items, WINDOW_BYTES if ship else None):
            run = self._run(window, start, ship)
            self.running = [run]
            for n, loaded in enumerate(run, start=start + 1):
                if n == len(items):  # every file's work is done (the driver asks for no more)
                    self.finish()
                yield loaded
            start += len(window)

    def _run(self, window: list[tuple[Path, str]], start: int, ship: bool) -> Iterator["Loaded"]:
        import pickle

        ray = self.ray
        rows = [_row(start + i, path, source, ship) for i, (path, source) in enumerate(window)]
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = min(len(rows), max(4 * cpus, -(-len(rows) // FILES_PER_BLOCK)))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        _configure(ds.context)
        # Ray retries a task, and restarts an actor and retries its batch, when its node is lost.
        ds = ds.map(load_file, fn_kwargs={"job": self.load}, num_cpus=LOAD_CPUS)
        # A fixed pool, one actor per CPU (fewer for a few files), all started at once: an
        # autoscaling pool starts one and adds the others seconds later. Batches of up to 16
        # files (a Ray Data call costs the same for 4 or 16), fewer when every actor needs some.
        per_batch = max(1, min(FILES_PER_BATCH, len(rows) // (BATCHES_PER_ACTOR * cpus)))
        actors = min(cpus, -(-len(rows) // per_batch))
        ds = ds.map_batches(embed_files(self.embed), batch_size=per_batch, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(min_size=actors, max_size=actors), num_cpus=EMBED_CPUS)
        del rows
        expected = start
        out = iter(ds.iter_rows())
        try:
            for row in out:
                loaded, vectors = pickle.loads(row["blob"])
                if int(row["n"]) != expected:
                    raise RuntimeError(f"Ray returned file {row['n']} where {expected} was due")
                expected += 1
                self.embedder.put([c.embed_text() for page in loaded.chunks for c in page], vectors)
                yield loaded
        finally:
            getattr(out, "close", lambda: None)()  # stops the pipeline when the driver stops early
        if expected != start + len(window):
            raise RagError(f"the Ray pipeline returned {expected - start} of {len(window)} files")

    def close(self) -> None:
        """Stop the pipeline (an ingest interrupted midway: its rows are not needed any more)."""
        for running in self.running:
            running.close()


def _row(n: int, path: Path, source: str, ship: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"n": n, "source": source, "path": str(path), "data": None, "error": None}
    if ship:
        try:
            row["data"] = path.read_bytes()
        except OSError as exc:  # reported as the loaders word it, by the worker, in its place in the plan
            row["error"] = read_error_reason(exc)
    return row


def _windows(items: list[tuple[Path, str]], max_bytes: int | None) -> Iterator[list[tuple[Path, str]]]:
    if max_bytes is None:
        if items:
            yield items
        return
    window: list[tuple[Path, str]] = []
    size = 0
    for path, source in items:
        n = _size(path)
        if window and size + n > max_bytes:
            yield window
            window, size = [], 0
        window.append((path, source))
        size += n
    if window:
        yield window


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class RayEngine:
    name = "ray"

    def __init__(self, ray: Any, settings: "Settings", owned: bool) -> None:
        self.ray, self.settings, self.owned = ray, settings, owned

    @classmethod
    def connect(cls, settings: "Settings") -> "RayEngine":
        """Join the cluster `ray_address` names, or start a Ray instance on this machine
        (None); a Ray already initialised in this process (a library caller's) is used as it is."""
        ray = import_ray()
        if ray.is_initialized():
            return cls(ray, settings, owned=False)
        address = settings.ray_address
        if address and address != "auto":
            _reachable(address)
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            else:
                from ..cpu import usable_cores  # sized to the machine, not to generation's free cores

                ray.init(address="local", num_cpus=settings.threads or usable_cores(), include_dashboard=False,
                         log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise RagError(f"cannot start or reach {where}: {exc}") from None
        return cls(ray, settings, owned=True)

    def work(self, todo: Sequence[tuple["Input", str]], embedder: "Embedder", writer: "Writer", limit: int,
             passwords: Sequence[str], load: "LoadFn") -> RayWork:
        settings = self.settings
        inner = getattr(embedder, "inner", embedder)  # the embedding cache's own embedder: workers embed every chunk
        tokenizer_file = getattr(inner, "tokenizer_file", None)
        # The packaged adapters hold an ONNX session or a torch model: each actor makes its own from
        # the settings. Any other embedder (a library caller's, a test's) is sent as it is.
        packaged = type(inner).__module__.startswith("rag.embedders.")
        if packaged and tokenizer_file is None:
            raise RagError(f"--engine ray counts tokens on the workers with the model's tokenizer.json, and "
                           f"{inner.name} has none; ingest with --engine local")
        load_job = LoadJob(load, tuple(passwords), settings.file_timeout, limit, settings.chunk_overlap,
                           str(tokenizer_file) if tokenizer_file else None, None if tokenizer_file else inner,
                           settings.embed_model, packaged)
        embed_job = EmbedJob(settings, None if packaged else inner, settings.batch_size, name=inner.name)
        if not writes_direct(settings, writer):
            return RayWork(self.ray, Delivered(inner), writer, load_job, embed_job, self._ship_bytes)
        milvus = ray_milvus.start(self.ray, settings, writer)

        def past_the_last_id() -> None:  # the draft's next id moves past every id the workers took
            writer.draft.next_id = max(writer.draft.next_id, int(self.ray.get(milvus.ids.end.remote())))

        return RayWork(self.ray, Delivered(inner), ray_milvus.DirectWriter(writer), load_job,
                       replace(embed_job, milvus=milvus), self._ship_bytes, finish=past_the_last_id)

    def _ship_bytes(self, items: Sequence[tuple[Path, str]]) -> bool:
        """Whether the workers need the files' bytes: see the module docstring."""
        if self.owned and not self.settings.ray_address:
            return False  # a Ray instance of this machine: its workers see what the driver sees
        sample = [(str(path), _size(path)) for path, _ in _spread(items, PROBE_FILES)]
        return not all(self._on_every_node(probe, sample))

    def _on_every_node(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        remote = ray.remote(num_cpus=0)(fn)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        return ray.get([remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                        .remote(*args) for node in nodes])

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def _configure(ctx: Any) -> None:
    """This pipeline's options (its own copy of Ray Data's context: the process's stays as it was)."""
    ctx.execution_options.preserve_order = True  # results in plan order: the same chunk ids as a local ingest
    ctx.enable_progress_bars = False  # ingest draws its own, on stderr
    ctx.print_on_execution_start = False


def _spread(items: Sequence[tuple[Path, str]], n: int) -> list[tuple[Path, str]]:
    """About n of the planned files, taken from each folder in turn (at most 32 folders
    beyond n): the plan is sorted, so its first files would all come from one folder,
    which may be the only one the workers can see."""
    groups: dict[str, list[tuple[Path, str]]] = {}
    for item in items:
        groups.setdefault(str(item[0].parent), []).append(item)
    order = [g for _, g in sorted(groups.items())]
    cap = max(n, min(len(order), 32))
    picked: list[tuple[Path, str]] = []
    depth = 0
    while len(picked) < cap and any(depth < len(g) for g in order):
        picked += [g[depth] for g in order if depth < len(g)][: cap - len(picked)]
        depth += 1
    return picked
