"""The ingest verb: discover -> plan (by content hash) -> load and chunk -> embed -> commit.

Planning reads only hashes and the manifest, so a run with nothing new loads no model.
New and changed files are loaded and chunked here (or ahead, in worker processes:
rag/prefetch.py), embedded in large batches and written through one store
transaction; a run that is killed leaves the index as the last commit left it. With
`engine = "ray"` a Ray cluster loads, chunks and embeds them (rag/engines/); planning,
storing and the commit stay here.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from .chunking import chunk_page
from .config import Settings, settings_for
from .discover import Input, discover
from .embedders import Embedder, make_embedder, resolve_embed_model, variant_name
from .variant import with_index_variant
from .embedders.cache import CachedEmbedder, cache_file
from .engines import Engine, open_engine
from .errors import LoaderError, RagError, unexpected_reason
from .identity import find_moves, name_inputs
from .ingest_batch import Batcher
from .loaders import REPAIRED_NOTE, SUPPORTED_SUFFIXES, iter_pages, read_error_reason
from .manifest import CHUNKER, Chunking, EmbedderInfo, FileRecord, Manifest, new_manifest, now_iso
from .stores import Backend, Transaction, Writer, backend_for, transaction
from .types import Chunk, FileFailure, IngestReport, Page, Progress

ProgressFn = Callable[[Progress], None]
# How long `rag ingest` waits for another writer (a watcher's batch, say) to commit.
WRITER_WAIT = 30.0
log = logging.getLogger(__name__)


def chunking_of(settings: Settings) -> Chunking:
    return Chunking(CHUNKER, settings.chunk_tokens, settings.chunk_overlap)


def page_chunks(
    path: Path, source: str, notes: list[str], passwords: Iterable[str], time_limit: float | None,
    count: Callable[[Sequence[str]], list[int]], limit: int, overlap: int, ocr: str = "auto",
) -> Iterator[tuple[Page, Sequence[Chunk]]]:
    """Each page of a file that has text, with its chunks (raises LoaderError). The worker
    processes of rag/prefetch.py and the Ray workers run this same function; anything
    else reading or chunking one file raises is that file's LoaderError."""
    try:
        for page in iter_pages(path, source, notes, passwords, time_limit, ocr=ocr):
            yield page, chunk_page(page, count, limit, overlap)
    except LoaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's or a library's own error on this file
        log.debug("reading %s raised", source, exc_info=True)
        raise LoaderError(source, unexpected_reason(exc, path.suffix.lstrip(".").upper() or "text")) from None


@dataclass
class _Plan:
    """What an ingest has to do, worked out from hashes before any model is loaded."""

    old: Manifest | None
    todo: list[tuple[Input, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, Input]] = field(default_factory=list)  # (old name, the file now): same content
    failed: list[FileFailure] = field(default_factory=list)

    @property
    def old_files(self) -> Mapping[str, FileRecord]:
        return self.old.files if self.old else {}


@dataclass(frozen=True)
class Tally:
    """What embedding and storing the planned files came to."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    failed: tuple[FileFailure, ...] = ()
    warnings: tuple[FileFailure, ...] = ()
    repaired: tuple[str, ...] = ()
    embedded: int = 0


def ingest(
    paths: Iterable[str | Path],
    index_dir: str | Path | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    passwords: Sequence[str] = (),
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    lock_wait: float = 0.0,
) -> IngestReport:
    """Bring the index in line with the given files and folders.

    New and changed files (by SHA-256) are loaded, chunked and embedded; files that
    left a folder that is ingested again are removed; unchanged files cost nothing; a
    file that moved (same content, new place) keeps its chunks and vectors.
    A file that cannot be read is reported in `failed` and keeps its earlier version.
    `include`/`exclude` are globs over paths relative to each folder; a file that an
    exclude pattern now hides counts as gone from its folder and is removed.
    `lock_wait`: seconds to wait for another writer to finish before giving up.

    Raises:
        RagError: no input exists or none is a supported document, another process is
            writing the index (IndexLockedError), or the index was built with other
            settings (IndexMismatchError).
    """
    started = time.perf_counter()
    paths = list(paths)
    found = discover(paths, include, exclude)
    if not found.inputs:
        looked = " ".join(sorted(SUPPORTED_SUFFIXES))
        first = found.skipped_files[0] if found.skipped_files else None
        skipped = f"; skipped {len(found.skipped_files)} file(s), e.g. {first.path}: {first.reason}" if first else ""
        raise RagError(f"no supported documents in {', '.join(map(str, paths))} (looked for {looked} "
                       f"and text files without a suffix{skipped})")
    roots = set(found.roots)
    report = ingest_inputs(found.inputs, lambda record: record.root in roots, index_dir, settings, embedder,
                           passwords, rebuild, progress, lock_wait)
    return replace(report, seconds=time.perf_counter() - started, skipped=found.skipped,
                   skipped_files=tuple(found.skipped_files))


def ingest_inputs(
    inputs: Sequence[Input],
    in_scope: Callable[[FileRecord], bool],
    index_dir: str | Path | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    passwords: Sequence[str] = (),
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    lock_wait: float = 0.0,
) -> IngestReport:
    """Bring the files `in_scope` accepts in line with `inputs` (rag/discover.py): those
    not among the inputs are removed. `ingest` passes the folders it walked, the watcher
    the paths that changed. Raises as `ingest`."""
    started = time.perf_counter()
    settings = settings_for(settings, index_dir)
    backend = backend_for(settings)
    settings = with_index_variant(settings, backend, rebuild)
    with transaction(backend, wait=lock_wait) as tx:
        plan = _plan(inputs, in_scope, settings, backend, embedder, rebuild)
        report = _apply(plan, tx, settings, embedder, passwords, rebuild, progress)
    return replace(report, seconds=time.perf_counter() - started)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plan(
    inputs: Sequence[Input], in_scope: Callable[[FileRecord], bool], settings: Settings, backend: Backend,
    embedder: Embedder | None, rebuild: bool,
) -> _Plan:
    old: Manifest | None = None
    if backend.exists():
        try:
            old = backend.read_manifest()
        except RagError:
            if not rebuild:  # a damaged index can only be started afresh
                raise
        if old and not rebuild:
            name = embedder.name if embedder else variant_name(resolve_embed_model(settings.embed_model)[0],
                                                               settings.embed_variant)
            old.check_compatible(backend.location, name, embedder.dim if embedder else None, chunking_of(settings))
    plan = _Plan(old)
    old_files = plan.old_files
    inputs = name_inputs(inputs, old_files)
    for item in inputs:
        try:
            digest = _sha256(item.path)
        except OSError as exc:
            plan.failed.append(FileFailure(item.source, read_error_reason(exc)))  # the loaders' wording
            continue
        rec = old_files.get(item.source)
        if rec and rec.sha256 == digest and not rebuild:
            plan.unchanged.append(item.source)
        else:
            plan.todo.append((item, digest))
    seen = {i.source for i in inputs}
    # A rebuild keeps only what is ingested now; otherwise a file is removed when it
    # left a folder (or path) that is being ingested again.
    plan.removed = sorted(s for s, r in old_files.items() if s not in seen and (rebuild or in_scope(r)))
    if not rebuild:
        plan.moved, plan.todo, plan.removed = find_moves(plan.todo, plan.removed, old_files)
    return plan


def _apply(
    plan: _Plan, tx: Transaction, settings: Settings, embedder: Embedder | None, passwords: Sequence[str],
    rebuild: bool, progress: ProgressFn | None,
) -> IngestReport:
    location = tx.backend.location
    before = IngestReport(
        unchanged=tuple(plan.unchanged), failed=tuple(plan.failed), files=len(plan.old_files),
        chunks=plan.old.chunks if plan.old else 0, index_dir=location,
    )
    if not plan.todo and not plan.removed and not plan.moved and not rebuild:
        return before  # nothing to embed: no model is loaded

    if plan.todo or rebuild or plan.old is None:  # removals and moves need no model
        embedder = embedder or make_embedder(settings)
    if plan.old is not None and not rebuild:
        if embedder is not None:
            plan.old.check_compatible(location, embedder.name, embedder.dim)
        manifest = plan.old
        kept = tx.backend.kept_policy(manifest)
        if kept:
            log.warning("the index at %s keeps the vector storage it was built with (%s); "
                        "ingest with --rebuild to change it", location, kept)
    else:
        assert embedder is not None
        manifest = new_manifest(EmbedderInfo(embedder.name, embedder.dim, embedder.max_tokens), chunking_of(settings))
    # a Ray cluster that cannot be reached fails here, before the writer starts; nothing to
    # embed (only moves and removals) needs no engine
    engine = open_engine(settings) if embedder is not None else None
    try:
        writer = tx.begin(manifest, fresh=rebuild)
        for old, item in plan.moved:
            writer.move_file(old, item.source, replace(
                plan.old_files[old], root=item.root, relative=item.relative, bytes=_size(item.path),
                ingested_at=now_iso()))
        cached = None
        if embedder is not None and settings.embed_cache:
            cached = CachedEmbedder(embedder, cache_file(settings.cache_dir, embedder))
        try:
            tally = _embed_and_store(plan, writer, cached or embedder, settings, passwords, progress, engine) \
                if embedder is not None and engine is not None else Tally(failed=tuple(plan.failed))
        finally:
            if cached:
                cached.close()
    finally:
        if engine is not None:
            engine.close()
    if not (tally.added or tally.updated or plan.removed or plan.moved or rebuild):  # every changed file failed
        return replace(before, failed=tally.failed, warnings=tally.warnings)  # nothing to commit: aborted
    for source in plan.removed:
        writer.remove_source(source)
    writer.draft.last_ingest = now_iso()
    committed = tx.commit()
    return IngestReport(
        added=tally.added, updated=tally.updated, removed=tuple(plan.removed), unchanged=tuple(plan.unchanged),
        moved=tuple((old, item.source) for old, item in plan.moved),
        failed=tally.failed, warnings=tally.warnings, repaired=tally.repaired, files=len(committed.files),
        chunks=committed.chunks, chunks_embedded=tally.embedded,
        chunks_from_cache=min(cached.hits, tally.embedded) if cached else 0, index_dir=location,
    )


def _embed_and_store(
    plan: _Plan, writer: Writer, embedder: Embedder, settings: Settings, passwords: Sequence[str],
    progress: ProgressFn | None, engine: Engine,
) -> Tally:
    limit = min(settings.chunk_tokens, embedder.max_tokens)
    added: list[str] = []
    updated: list[str] = []
    failed, warnings, repaired = list(plan.failed), [], []
    work = engine.work(plan.todo, embedder, writer, limit, passwords, partial(page_chunks, ocr=settings.ocr))
    batch = Batcher(work.writer, work.embedder, settings, progress)
    ahead = work.results((item.path, item.source) for item, _ in plan.todo)
    try:
        for n, (item, digest) in enumerate(plan.todo, start=1):
            if progress:
                progress(Progress("load", n - 1, len(plan.todo), item.source))
            loaded = next(ahead)
            notes: list[str] = list(loaded.notes) if loaded is not None else []
            pages = chunks = 0
            try:
                pairs = loaded.pairs(item.source) if loaded is not None else page_chunks(
                    item.path, item.source, notes, passwords, settings.file_timeout, embedder.count_tokens,
                    limit, settings.chunk_overlap, ocr=settings.ocr)
                for page, page_chunks_ in pairs:
                    pages += page.offset == 0
                    chunks += len(page_chunks_)
                    batch.add(page, page_chunks_)
            except LoaderError as exc:
                batch.drop(item.source)
                failed.append(FileFailure(item.source, exc.reason))
                continue
            if REPAIRED_NOTE in notes:
                repaired.append(item.source)
            warnings.extend(FileFailure(item.source, note) for note in notes if note != REPAIRED_NOTE)
            batch.finish(item.source, FileRecord(
                sha256=digest, chunks=chunks, pages=pages, bytes=_size(item.path), root=item.root,
                ingested_at=now_iso(), relative=item.relative))
            (updated if item.source in plan.old_files else added).append(item.source)
    finally:
        work.close()
    if progress and plan.todo:
        progress(Progress("load", len(plan.todo), len(plan.todo), ""))
    batch.flush()
    return Tally(tuple(added), tuple(updated), tuple(failed), tuple(warnings), tuple(repaired), batch.embedded)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
