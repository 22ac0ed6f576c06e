"""The index as a long-running server sees it: the models loaded once, and the store of
the latest commit.

A FAISS index commits by flipping its CURRENT file to a new generation folder (see
rag/stores/faiss.py). Each request leases the newest `Index`: if CURRENT names another
generation than the one open, that generation is opened (whole, or not at all) and
becomes the one new requests get, while requests already running finish on the one they
started with; the old store is closed when its last lease ends. So a concurrent
`rag ingest` shows up at the next request and a half-written generation never does.
Milvus stores follow commits themselves (`Store.refresh` before each search).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any, Iterator

from ..config import Settings
from ..embedders import Embedder
from ..errors import RagError
from ..generators import Generator
from ..index import Index
from ..inventory import Listing, listing
from ..readers import Reader, make_reader
from ..stores import backend_for

log = logging.getLogger(__name__)


@dataclass
class _Snapshot:
    index: Index
    stamp: str | None  # the generation it holds (None: the store follows commits itself)
    users: int = 0
    retired: bool = False


class IndexFollower:
    """Leases of the Index of the latest commit, all sharing one embedder, reader and generator.

    Args:
        load_generator: load the LLM now (False: only if a request needs it, once).
        embedder, generator, reader: injected models (tests); else built from the settings.

    Raises:
        RagError: the index or a model cannot be opened (at construction, so a server
            fails before it listens).
    """

    def __init__(
        self, settings: Settings, load_generator: bool = True, embedder: Embedder | None = None,
        generator: Generator | None = None, reader: Reader | None = None,
    ) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # guards the current snapshot and the lease counts
        self._opening = threading.Lock()  # one request opens a new commit, the others go on
        self._generator_lock = threading.Lock()
        self._refused: str | None = None  # a commit that could not be opened (another embedder?)
        index = Index.open(settings=settings, embedder=embedder, generator=generator, reader=reader)
        index.load_models(generator=load_generator)
        self.embedder = index.embedder
        self.reader = reader if reader is not None else index.reader
        self._generator = generator if generator is not None else (index.generator if load_generator else None)
        self._current = _Snapshot(index, self._stamp())
        self.swaps = 0  # commits followed since start

    @property
    def generator(self) -> Generator:
        """The one generator; loaded by the first request that needs it if not at start."""
        with self._generator_lock:
            if self._generator is None:
                self._generator = self._current.index.generator
            return self._generator

    @property
    def generator_loaded(self) -> bool:
        return self._generator is not None

    def _stamp(self) -> str | None:
        if self.settings.store != "faiss":
            return None
        from ..stores.faiss_files import live_generation

        return live_generation(self.settings.index_dir).name

    def _follow(self) -> None:
        """Make the newest commit the current snapshot if it is not yet. The new store is
        opened outside the lease lock, so requests go on meanwhile on the one open."""
        try:
            stamp = self._stamp()
        except RagError as exc:  # CURRENT unreadable for a moment: keep serving what is open
            log.warning("cannot read the index's live generation (%s); serving the open one", exc)
            return
        if stamp in (self._current.stamp, self._refused):
            return
        with self._opening:
            if stamp == self._current.stamp:
                return  # another request opened it while this one waited
            try:
                store = backend_for(self.settings).open()
                try:
                    index = Index(store, self.settings, self.embedder, self._generator, self.reader)
                except BaseException:  # built with another embedder, say: the store is not kept
                    store.close()
                    raise
            except RagError as exc:
                log.error("cannot open the index's new commit %s (%s); serving the open one", stamp, exc)
                self._refused = stamp  # not again for every request: only for a later commit
                return
            log.info("following the index to its commit %s", stamp)
            with self._lock:
                old, self._current = self._current, _Snapshot(index, stamp)
                self.swaps += 1
                old.retired = True
                if old.users == 0:
                    old.index.close()

    @contextlib.contextmanager
    def lease(self, generate: bool = False, **overrides: Any) -> Iterator[Index]:
        """The Index of the latest commit, held open until the block ends.

        Args:
            generate: the request will write with the LLM (loads it now if it is not yet).
            overrides: settings for this request only (context_tokens, strategy, ...).

        Raises:
            ConfigError: an override has a value the settings refuse.
        """
        generator = self.generator if generate else self._generator
        self._follow()
        with self._lock:
            snap = self._current
            snap.users += 1
        try:
            settings = replace(snap.index.settings, **overrides) if overrides else snap.index.settings
            # A view sharing the store and the models: never a second copy of a model.
            yield Index(snap.index.store, settings, self.embedder, generator, self.reader)
        finally:
            with self._lock:
                snap.users -= 1
                if snap.retired and snap.users == 0:
                    snap.index.close()

    def describe(self) -> dict[str, Any]:
        """What /health reports about the index: where, which commit, how much."""
        self._follow()
        with self._lock:
            snap = self._current
            store = snap.index.store
            return {"location": store.location, "store": self.settings.store, "generation": snap.stamp,
                    "files": len(store.manifest.files), "chunks": store.size, "commits_followed": self.swaps}

    def listing(self) -> Listing:
        """What `rag list` reports, from the leased store: no second copy of the index is
        opened (rag.inventory.list_index would read all its vectors again)."""
        with self.lease() as index:
            index.store.refresh()  # a store that follows commits itself (Milvus) moves to the latest
            return listing(backend_for(self.settings), index.store)

    def close(self) -> None:
        with self._lock:
            self._current.retired = True
            if self._current.users == 0:
                self._current.index.close()
