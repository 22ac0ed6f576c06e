"""ingest() and Index: the only place that wires loaders, chunking, embedding, store and LLM.

Every heavy part can be injected (`embedder=`, `generator=`); when it is not, it is built
from the settings on first use, so commands that need no model load none.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .stores import FORMAT, FORMAT_VERSION, Backend, FileRecord, Store, Writer, backend_for, now_iso
from . import vector_index
from .citations import citations_for, is_refusal, support, word_forms
from .config import Settings, cache_dir
from .discover import Input, discover
from .embed import Embedder, make_embedder, resolve_embed_model
from .embed_cache import CachedEmbedder, cache_file
from .errors import ConfigError, IndexMismatchError, LoaderError, RagError
from .evaluate import (
    EvalResult, load_qa, load_qrels, load_queries, materialize, pick_split, run_queries, score_answers,
)
from .llm import Generator, make_generator
from .loaders import REPAIRED_NOTE
from .prefetch import Prefetcher, page_chunks
from .prompt import NOT_FOUND, Prompt, build_prompt
from .retrieve import Retriever, Where
from .verify import SUPPORT_THRESHOLD, Extract, extract, render, verify
from .types import Answer, Chunk, FileFailure, Hit, IngestReport, Page, Progress, Sentence

log = logging.getLogger(__name__)

CHUNKER = "structure-v1"
ProgressFn = Callable[[Progress], None]


def _settings(settings: Settings | None, index_dir: str | Path | None) -> Settings:
    settings = settings or Settings.load()
    return settings._merged({"index_dir": index_dir}) if index_dir is not None else settings


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunking_manifest(settings: Settings) -> dict[str, Any]:
    return {"algorithm": CHUNKER, "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}


def check_embedder(manifest: dict[str, Any], name: str, dim: int | None) -> None:
    """Refuse to mix an index with another embedder (raises IndexMismatchError)."""
    built = manifest["embedder"]
    if built["name"] != name or (dim is not None and built["dim"] != dim):
        raise IndexMismatchError(
            f"the index was built with embedder {built['name']} ({built['dim']} dims), not {name}"
            f"{f' ({dim} dims)' if dim else ''}; use the same --embed-model, or rebuild with --rebuild"
        )


def check_chunking(manifest: dict[str, Any], settings: Settings) -> None:
    if manifest["chunking"] != _chunking_manifest(settings):
        raise IndexMismatchError(
            f"the index was built with chunking {manifest['chunking']}, not {_chunking_manifest(settings)}; "
            "use the same chunk settings, or rebuild with --rebuild"
        )


@dataclass
class _Plan:
    """What an ingest has to do, worked out from hashes before any model is loaded."""

    old: dict[str, Any] | None
    old_files: dict[str, FileRecord]
    todo: list[tuple[Input, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)


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
) -> IngestReport:
    """Bring the index in line with the given files and folders.

    New and changed files (by SHA-256) are loaded, chunked and embedded; files that
    left a folder that is ingested again are removed; unchanged files cost nothing.
    A file that cannot be read is reported in `failed` and keeps its earlier version.
    `include`/`exclude` are globs over paths relative to each folder; a file that an
    exclude pattern now hides counts as gone from its folder and is removed.

    Raises:
        RagError: no input exists or none is a supported document, another process is
            writing the index (IndexLockedError), or the index was built with other
            settings (IndexMismatchError).
    """
    started = time.perf_counter()
    settings = _settings(settings, index_dir)
    paths = list(paths)
    inputs, roots = discover(paths, include, exclude)
    if not inputs:
        raise RagError(f"no supported documents in {', '.join(map(str, paths))} (looked for {_suffix_list()})")
    backend = backend_for(settings)
    with backend.write_lock():
        backend.sweep()  # what a killed earlier run left behind
        plan = _plan(inputs, roots, settings, backend, embedder, rebuild)
        report = _apply(plan, settings, backend, embedder, passwords, rebuild, progress)
    return replace(report, seconds=time.perf_counter() - started)


def _plan(
    inputs: list[Input], roots: list[str], settings: Settings, backend: Backend, embedder: Embedder | None,
    rebuild: bool,
) -> _Plan:
    old: dict[str, Any] | None = None
    if backend.exists():
        try:
            old = backend.read_manifest()
        except RagError:
            if not rebuild:  # a damaged index can only be started afresh
                raise
        if old and not rebuild:
            name = embedder.name if embedder else resolve_embed_model(settings.embed_model)[0]
            check_embedder(old, name, embedder.dim if embedder else None)
            check_chunking(old, settings)
    plan = _Plan(old, {k: FileRecord(**v) for k, v in (old or {}).get("files", {}).items()})
    for item in inputs:
        try:
            digest = _sha256(item.path)
        except OSError as exc:
            plan.failed.append(FileFailure(item.source, f"cannot read: {exc.strerror or exc}"))
            continue
        rec = plan.old_files.get(item.source)
        if rec and rec.sha256 == digest and not rebuild:
            plan.unchanged.append(item.source)
        else:
            plan.todo.append((item, digest))
    seen = {i.source for i in inputs}
    # A rebuild keeps only what is ingested now; otherwise a file is removed when it
    # left a folder that is being ingested again.
    plan.removed = sorted(
        s for s, r in plan.old_files.items() if s not in seen and (rebuild or r.root in roots)
    )
    return plan


def _apply(
    plan: _Plan,
    settings: Settings,
    backend: Backend,
    embedder: Embedder | None,
    passwords: Sequence[str],
    rebuild: bool,
    progress: ProgressFn | None,
) -> IngestReport:
    index_dir = backend.location
    unchanged = IngestReport(
        unchanged=tuple(plan.unchanged), failed=tuple(plan.failed), files=len(plan.old_files),
        chunks=int((plan.old or {}).get("chunks", 0)), index_dir=str(index_dir),
    )
    if not plan.todo and not plan.removed and not rebuild:
        return unchanged  # nothing to embed: no model is loaded

    embedder = embedder or make_embedder(settings.embed_model, settings.threads, settings.embed_runtime)
    keep_old = plan.old is not None and not rebuild
    if keep_old:
        check_embedder(plan.old, embedder.name, embedder.dim)  # type: ignore[arg-type]
        built = vector_index.describe(plan.old.get("vectors"))  # type: ignore[union-attr]
        if (built["storage"], built["ann_from"]) != (settings.vector_storage, settings.ann_from):
            log.warning("the index at %s keeps the vector storage it was built with (%s, IVF from %d chunks); "
                        "ingest with --rebuild to change it", index_dir, built["storage"], built["ann_from"])
    manifest = plan.old if keep_old else {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "embedder": {"name": embedder.name, "dim": embedder.dim, "max_tokens": embedder.max_tokens},
        "chunking": _chunking_manifest(settings),
        "vectors": vector_index.describe({"storage": settings.vector_storage, "ann_from": settings.ann_from}),
        "created_at": now_iso(),
    }
    writer = backend.writer(manifest, fresh=rebuild)  # type: ignore[arg-type]
    try:
        failed = list(plan.failed)
        cached = CachedEmbedder(embedder, cache_file(cache_dir(), embedder)) if settings.embed_cache else None
        try:
            added, updated, warnings, repaired, embedded = _embed_and_store(
                plan.todo, plan.old_files, writer, cached or embedder, settings, passwords, failed, progress
            )
        finally:
            if cached:
                cached.close()
        if not (added or updated or plan.removed or rebuild):  # every changed file failed
            writer.abort()
            return replace(unchanged, failed=tuple(failed), warnings=tuple(warnings))  # nothing to commit
        for source in plan.removed:
            writer.remove_source(source)
        writer.manifest["last_ingest"] = now_iso()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return IngestReport(
        added=tuple(added), updated=tuple(updated), removed=tuple(plan.removed), unchanged=tuple(plan.unchanged),
        failed=tuple(failed), warnings=tuple(warnings), repaired=tuple(repaired), files=len(writer.manifest["files"]),
        chunks=int(writer.manifest["chunks"]), chunks_embedded=embedded,
        chunks_from_cache=min(cached.hits, embedded) if cached else 0, index_dir=str(index_dir),
    )


def _suffix_list() -> str:
    from .loaders import SUPPORTED_SUFFIXES

    return " ".join(sorted(SUPPORTED_SUFFIXES))


class _Batcher:
    """Collects chunks across files and embeds them in large batches; a file is recorded
    as finished only once all of its chunks are stored. Memory holds at most one batch."""

    def __init__(self, writer: Writer, embedder: Embedder, settings: Settings, progress: ProgressFn | None):
        self.writer, self.embedder, self.settings, self.progress = writer, embedder, settings, progress
        self.size = settings.batch_size * 8  # chunks per flush to the store
        self.chunks: list[Chunk] = []
        self.pages: list[Page] = []
        self.finished: list[tuple[str, FileRecord]] = []
        self.embedded = 0
        self.produced = 0  # chunks made so far: the embed bar's moving total

    def add(self, pages: Sequence[Page], chunks: Sequence[Chunk]) -> None:
        self.pages.extend(pages)
        self.chunks.extend(chunks)
        self.produced += len(chunks)
        if len(self.chunks) >= self.size:
            self.flush()

    def finish(self, source: str, record: FileRecord) -> None:
        self.finished.append((source, record))

    def drop(self, source: str) -> None:
        """Forget a failed file's chunks, buffered or already stored."""
        kept = [c for c in self.chunks if c.source != source]
        self.produced -= len(self.chunks) - len(kept)
        self.chunks = kept
        self.pages = [p for p in self.pages if p.source != source]
        self.writer.discard_file(source)

    def flush(self) -> None:
        done = self.embedded

        def step(n: int) -> None:
            nonlocal done
            done += n
            if self.progress:
                self.progress(Progress("embed", done, self.produced))

        texts = [c.embed_text() for c in self.chunks]
        vectors = self.embedder.embed(texts, self.settings.batch_size, step)
        self.writer.add_chunks(self.chunks, vectors)
        self.writer.add_pages(self.pages)
        for source, record in self.finished:
            self.writer.finish_file(source, record)
        self.embedded += len(self.chunks)
        self.chunks, self.pages, self.finished = [], [], []


def _embed_and_store(
    todo: list[tuple[Input, str]],
    old_files: dict[str, FileRecord],
    writer: Writer,
    embedder: Embedder,
    settings: Settings,
    passwords: Sequence[str],
    failed: list[FileFailure],
    progress: ProgressFn | None,
) -> tuple[list[str], list[str], list[FileFailure], list[str], int]:
    limit = min(settings.chunk_tokens, embedder.max_tokens)
    added: list[str] = []
    updated: list[str] = []
    warnings: list[FileFailure] = []
    repaired: list[str] = []
    batch = _Batcher(writer, embedder, settings, progress)
    tokenizer_file = getattr(embedder, "tokenizer_file", None)
    prefetcher = (
        Prefetcher(settings.workers, tokenizer_file, limit, settings.chunk_overlap, passwords, settings.file_timeout)
        if settings.workers > 0 and tokenizer_file is not None and len(todo) > 1 else None
    )
    ahead = prefetcher.results((item.path, item.source) for item, _ in todo) if prefetcher else None
    try:
        for n, (item, digest) in enumerate(todo, start=1):
            if progress:
                progress(Progress("load", n - 1, len(todo), item.source))
            loaded = next(ahead) if ahead is not None else None
            notes: list[str] = []
            pages = 0
            chunks = 0
            try:
                if loaded is not None:  # loaded and chunked by a worker process
                    notes.extend(loaded.notes)
                    pairs = loaded.pairs(item.source)
                else:
                    pairs = page_chunks(item.path, item.source, notes, passwords, settings.file_timeout,
                                        embedder.count_tokens, limit, settings.chunk_overlap)
                for page, page_chunks_ in pairs:
                    pages += page.offset == 0
                    chunks += len(page_chunks_)
                    batch.add([page], page_chunks_)
            except LoaderError as exc:
                batch.drop(item.source)
                failed.append(FileFailure(item.source, exc.reason))
                continue
            if REPAIRED_NOTE in notes:
                repaired.append(item.source)
            warnings.extend(FileFailure(item.source, note) for note in notes if note != REPAIRED_NOTE)
            try:
                size = item.path.stat().st_size
            except OSError:
                size = 0
            batch.finish(item.source, FileRecord(
                sha256=digest, chunks=chunks, pages=pages, bytes=size, root=item.root, ingested_at=now_iso(),
            ))
            (updated if item.source in old_files else added).append(item.source)
    finally:
        if prefetcher:
            prefetcher.close()
    if progress and todo:
        progress(Progress("load", len(todo), len(todo), ""))
    batch.flush()
    return added, updated, warnings, repaired, batch.embedded


def add_source_passages(
    text: str, checked: Sequence[Sentence], quotes: Extract, hits: Sequence[Hit], sources: Sequence[Hit]
) -> tuple[str, tuple[Sentence, ...]] | None:
    """The "grounded" strategy: the answer with the best source passages (the extractive
    answer's) added after it, renumbered to their place in the prompt, and its sentences
    with the passages'; None when the answer already says what every passage says or no
    passage was in the prompt."""
    added = []
    for best in quotes.sentences:
        hit = hits[best.citations[0] - 1]
        numbers = [n for n, h in enumerate(sources, start=1) if h.chunk_id == hit.chunk_id]
        if not numbers or support(best.text, text) >= SUPPORT_THRESHOLD:
            continue
        n = numbers[0]
        added.append(replace(best, citations=(n,), quotes=tuple(replace(q, id=n) for q in best.quotes)))
    if not added:
        return None
    return f"{text}\n\nFrom the sources: {render(added)}", (*checked, *added)


def _timings(t0: float, t1: float, t2: float) -> dict[str, float]:
    return {"retrieve": (t1 - t0) * 1000, "generate": (t2 - t1) * 1000, "total": (time.perf_counter() - t0) * 1000}


class Index:
    """An index opened for search and question answering.

    >>> index = Index.open("indexes/default")
    >>> index.search("what is a context window?", k=5)
    >>> index.ask("what is a context window?")
    """

    def __init__(
        self, store: Store, settings: Settings, embedder: Embedder | None = None, generator: Generator | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        built = store.manifest["embedder"]
        if embedder is not None:
            check_embedder(store.manifest, embedder.name, embedder.dim)
        elif settings.embed_model is not None and resolve_embed_model(settings.embed_model)[0] != built["name"]:
            raise IndexMismatchError(
                f"the index at {store.location} was built with embedder {built['name']}, "
                f"not {settings.embed_model}; drop --embed-model or rebuild with --rebuild"
            )

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> "Index":
        settings = _settings(settings, index_dir)
        return cls(backend_for(settings).open(), settings, embedder, generator)

    def load_models(self, generator: bool = True) -> None:
        """Load the embedder (and the generator unless `generator` is False) now, so a bad
        model path fails before the first question rather than in the middle of it."""
        self.embedder
        if generator:
            self.generator

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            name = self.store.manifest["embedder"]["name"]
            spec = None if name == resolve_embed_model(None)[0] else name
            self._embedder = make_embedder(spec, self.settings.threads, self.settings.embed_runtime)
            if self._embedder.dim != self.store.dim:
                raise IndexMismatchError(
                    f"embedder {name} gives {self._embedder.dim} dims, the index holds {self.store.dim}"
                )
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = make_generator(self.settings)
        return self._generator

    def search(
        self, query: str, k: int | None = None, mode: str | None = None, where: Where | None = None
    ) -> list[Hit]:
        """The k chunks that best match the query, best first.

        Args:
            mode: "dense", "lexical" or "hybrid" (default: the settings' mode).
            where: keep only hits from matching sources / file types.
        """
        k = self.settings.top_k if k is None else k
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        retriever = Retriever(self.store, self.embedder, self.settings.rrf_k, self.settings.fusion)
        return retriever.search(query, k, mode or self.settings.mode, where)

    def idf(self, text: str) -> dict[str, float]:
        """The IDF of each content word of the text, looked up by the form the text uses
        (the lexical index stems words its own way)."""
        forms = word_forms(text)
        found = self.store.idf(set(forms.values()))
        return {w: found[form] for w, form in forms.items()}

    def prompt(self, question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]] = ()) -> Prompt:
        s = self.settings
        return build_prompt(question, hits, self.generator, s.context_tokens, s.max_answer_tokens, history)

    def ask(
        self,
        question: str,
        k: int | None = None,
        on_token: Callable[[str], None] | None = None,
        mode: str | None = None,
        where: Where | None = None,
        extractive: bool = False,
        history: Sequence[tuple[str, str]] = (),
        query: str | None = None,
    ) -> Answer:
        """Retrieve, prompt the LLM and return its answer with the sources it cites.

        Args:
            on_token: called with each piece of the answer as it is generated.
            extractive: answer with the best-matching source sentences, without the LLM.
            history: earlier (question, answer) turns of a chat, oldest first; the
                newest that fit the context budget after the sources go in the prompt.
            query: what to retrieve with, when it differs from the question (a chat
                follow-up rewritten to stand alone).
        """
        if not question.strip():
            raise ConfigError("the question is empty")
        extractive = extractive or self.settings.strategy == "extractive"
        t0 = time.perf_counter()
        hits = self.search(query or question, k, mode, where)
        t1 = time.perf_counter()
        models = {"embedder": self.store.manifest["embedder"]["name"], "llm": "" if extractive else self.generator.name}
        asked = query or question  # a chat follow-up is judged by its standalone form
        quotes = extract(asked, hits, idf=self.idf(asked))
        best = max((h.similarity or 0.0 for h in hits), default=0.0)
        if (best < self.settings.min_score or quotes.coverage < self.settings.min_coverage
                or (self.settings.check_terms and quotes.missing)
                or not quotes.sentences):
            # Nothing close enough to answer from, no passage covers what the question asks,
            # or a name or number of the question is in no source (asked about Mistral,
            # the sources speak of Llama): say so without asking the LLM, and return the
            # closest chunks to look at.
            if on_token:
                on_token(NOT_FOUND)
            timings = _timings(t0, t1, t1)
            return Answer(question, NOT_FOUND, False, (), (), tuple(hits), models, timings, strategy="abstain",
                          coverage=quotes.coverage, missing=quotes.missing)
        if extractive:
            return self._quoted(question, hits, quotes, models, t0, t1, on_token)
        prompt = self.prompt(question, hits, history)
        pieces: list[str] = []
        s = self.settings
        for piece in self.generator.stream(prompt.text, s.max_answer_tokens, s.temperature, s.context_tokens):
            pieces.append(piece)
            if on_token:
                on_token(piece)
        t2 = time.perf_counter()
        text = "".join(pieces).strip()
        sentences = verify(text, prompt.sources)
        refused = is_refusal(text)
        if s.fallback and not refused and not any(x.supported for x in sentences):
            quoted = self._quoted(question, hits, quotes, models, t0, t1, None)
            return replace(quoted, strategy="fallback", draft=text, timings_ms={**quoted.timings_ms, "generate": (t2 - t1) * 1000})
        strategy = "abstain" if refused else "llm"
        if s.strategy == "grounded" and not refused:
            grounded = add_source_passages(text, sentences, quotes, hits, prompt.sources)
            if grounded is not None:
                if on_token:
                    on_token(grounded[0][len(text):])
                (text, sentences), strategy = grounded, "llm+quote"
        return Answer(
            question=question, text=text, answerable=not refused, citations=citations_for(text, sentences, prompt.sources),
            sources=prompt.sources, hits=tuple(hits), models=models, timings_ms=_timings(t0, t1, t2),
            sentences=sentences, strategy=strategy, coverage=quotes.coverage, missing=quotes.missing,
        )

    def _quoted(
        self, question: str, hits: Sequence[Hit], quotes: Extract, models: dict[str, str], t0: float, t1: float,
        on_token: Callable[[str], None] | None,
    ) -> Answer:
        text = render(quotes.sentences)
        if on_token:
            on_token(text)
        return Answer(
            question=question, text=text, answerable=True, citations=citations_for(text, quotes.sentences, hits),
            sources=tuple(hits), hits=tuple(hits), models=models, timings_ms=_timings(t0, t1, time.perf_counter()),
            sentences=quotes.sentences, strategy="extractive", coverage=quotes.coverage, missing=quotes.missing,
        )

    def close(self) -> None:
        self.store.close()


def evaluate(
    folder: str | Path,
    split: str | None = None,
    mode: str | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    index_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Retrieval metrics on a BEIR-format folder (see rag/evaluate.py).

    The corpus is ingested into its own index, `indexes/eval-<folder name>` beside the
    default index unless `index_dir` is given, and reused by later runs.
    """
    folder = Path(folder)
    settings = settings or Settings.load()
    split = pick_split(folder, split)
    qrels = load_qrels(folder, split)
    queries = load_queries(folder, set(qrels))
    if not queries:
        raise RagError(f"no query of {folder / 'queries.jsonl'} has judgements in qrels/{split}.tsv")
    base = Path(index_dir) if index_dir else settings.index_dir.parent / f"eval-{folder.resolve().name}"
    materialize(folder, base / "docs")
    overrides: dict[str, Any] = {"index_dir": base / "index"}
    if settings.milvus_uri:  # a shared Milvus: the evaluation gets collections of its own
        overrides["milvus_collection"] = "_".join(
            [settings.milvus_collection, "eval", *re.findall(r"[A-Za-z0-9]+", folder.resolve().name)])[:200]
    settings = settings._merged(overrides)
    ingest([base / "docs"], settings=settings, embedder=embedder, progress=progress)
    index = Index.open(settings=settings, embedder=embedder)
    mode = mode or settings.mode
    index.search("warm up", 1, mode)  # load the embedder before the clock starts

    def step(done: int, total: int) -> None:
        if progress:
            progress(Progress("query", done, total))

    try:
        return run_queries(lambda q, k: index.search(q, k, mode), queries, qrels, mode, split, progress=step)
    finally:
        index.close()


def evaluate_qa(
    path: str | Path, index: "Index", extractive: bool = False, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Ask every question of a JSONL question set and score the answers (see score_answers)."""
    items = load_qa(Path(path))
    answers = []
    for n, item in enumerate(items, start=1):
        answers.append(index.ask(item["question"], extractive=extractive))
        if progress:
            progress(Progress("query", n, len(items)))
    return score_answers(items, answers, "extractive" if extractive else index.settings.strategy)
