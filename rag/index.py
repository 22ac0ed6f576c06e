"""`Index`: an index opened for search and question answering.

Short orchestration over the parts: the store (rag/stores/), the embedder
(rag/embedders/), retrieval (rag/retrieve.py), the prompt (rag/prompt.py), the generator
(rag/generators/), the reader (rag/readers/) and the answer policy (rag/answer.py).
Models are built from the settings when first needed, or up front with `load_models()`;
any of them can be injected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from . import answer as policy
from .config import Settings, settings_for
from .embedders import Embedder, make_embedder, resolve_embed_model, split_variant
from .errors import ConfigError, IndexMismatchError, RagError
from .generators import Generator, make_generator
from .prompt import Prompt, build_prompt
from .readers import Reader, make_reader, read_hits
from .retrieve import Retriever
from .stores import Store, backend_for
from .text import word_forms
from .answer_gate import Evidence, Gate, features, load_gate
from .answer_locate import focused, locate
from .types import Answer, AnswerSpan, GateScore, Hit, Reading, ReaderVerdict, Where
from .verify import extract

log = logging.getLogger(__name__)
_OFF = object()  # no reader injected: the settings say which, if any
LOCATE_DEPTH = 5  # the top of the dense and of the lexical ranking read besides the hits


class Index:
    """An index opened for search and question answering.

    >>> index = Index.open("indexes/default")
    >>> index.search("what is a context window?", k=5)
    >>> index.ask("what is a context window?")
    """

    def __init__(
        self, store: Store, settings: Settings, embedder: Embedder | None = None, generator: Generator | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._reader: object = _OFF if reader is None else reader
        self._span_reader: object = _OFF
        self._gate: object = _OFF
        built = store.manifest.embedder
        if embedder is not None:
            store.manifest.check_compatible(store.location, embedder.name, embedder.dim)
        elif settings.embed_model is not None and resolve_embed_model(settings.embed_model)[0] != split_variant(built.name)[0]:
            raise IndexMismatchError(
                f"the index at {store.location} was built with embedder {built.name}, "
                f"not {settings.embed_model}; drop --embed-model or rebuild with --rebuild"
            )

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        reader: Reader | None = None,
    ) -> "Index":
        settings = settings_for(settings, index_dir)
        return cls(backend_for(settings).open(), settings, embedder, generator, reader)

    def load_models(self, generator: bool = True) -> None:
        """Load the embedder, the reader if one is on, and the generator unless `generator`
        is False, now, so a bad model path fails before the first question rather than in
        the middle of it."""
        self.embedder
        self.reader
        self.span_reader
        if generator:
            self.generator

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            # The index's own model and variant (fp32 or int8), whatever the settings ask for new ones.
            name = self.store.manifest.embedder.name
            model, variant = split_variant(name)
            spec = None if model == resolve_embed_model(None)[0] else model
            self._embedder = make_embedder(replace(self.settings, embed_model=spec, embed_variant=variant))
            if self._embedder.dim != self.store.dim:
                raise IndexMismatchError(
                    f"embedder {name} gives {self._embedder.dim} dims, the index holds {self.store.dim}"
                )
        return self._embedder

    @property
    def reader(self) -> Reader | None:
        """The injected reader, else the one the settings name (None: off)."""
        if self._reader is _OFF:
            self._reader = make_reader(self.settings)
        return self._reader  # type: ignore[return-value]

    @property
    def span_reader(self):  # -> OnnxReader | None
        """The reader whose span head locates answers: the `reader`'s when it has one,
        else the packaged reader (None with `locate` off, or when neither has a span head)."""
        if self._span_reader is _OFF:
            found = None
            if self.settings.locate:
                reader = self.reader
                if reader is not None and getattr(reader, "has_spans", False):
                    found = reader
                else:
                    try:
                        candidate = make_reader(replace(self.settings, reader="default", reader_threshold=None))
                    except RagError as exc:
                        log.warning("no span reader to locate answers with (%s): word overlap picks them", exc)
                        candidate = None
                    found = candidate if getattr(candidate, "has_spans", False) else None
            self._span_reader = found
        return self._span_reader

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = make_generator(self.settings)
        return self._generator

    def search(
        self, query: str, k: int | None = None, mode: str | None = None, where: Where | None = None,
        rerank: bool | None = None,
    ) -> list[Hit]:
        """The k chunks that best match the query, best first.

        Args:
            mode: "dense", "lexical" or "hybrid" (default: the settings' mode).
            where: keep only hits from matching sources / file types.
            rerank: have the reader reorder the top hits (rag/readers/ READ_DEPTH) by its
                score (default: the settings' rerank; nothing happens without a reader).
        """
        k = self.settings.top_k if k is None else k
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        retriever = Retriever(self.store, self.embedder, self.settings.rrf_k, self.settings.fusion)
        hits = retriever.search(query, k, mode or self.settings.mode, where)
        if self.settings.rerank if rerank is None else rerank:
            hits, _ = self._read(query, hits, rerank=True)
        return hits

    def _read(self, question: str, hits: list[Hit], rerank: bool) -> tuple[list[Hit], ReaderVerdict | None]:
        """The hits as the reader scored (and with `rerank` ordered) them, and its verdict;
        unchanged, and no verdict, when no reader is on."""
        if self.reader is None:
            if rerank:
                log.warning("rerank needs a reader: pass --reader PATH (or set reader); the hits keep their order")
            return hits, None
        return read_hits(self.reader, question, hits, rerank)

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
        on_draft: Callable[[str], None] | None = None,
    ) -> Answer:
        """Retrieve, prompt the LLM and return its answer with the sources it cites.

        Args:
            on_token: called with the pieces of the answer (`Answer.text`). With the
                `show_unsupported` setting the LLM's pieces come as they are generated
                (then any passages added); otherwise the answer comes in one piece once
                checked, since sentences the sources do not support are left out of it.
            on_draft: called with each piece the LLM generates, as it is generated,
                whatever the answer keeps of it (to show progress, or time the first token).
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
        asked = query or question  # a chat follow-up is judged by its standalone form
        ev = self.evidence(asked, k, mode, where)
        hits, quotes, verdict, located = list(ev.hits), ev.quotes, ev.verdict, ev.located
        t1 = t2 = time.perf_counter()
        models = self._models(extractive, verdict)
        gate = self._gate_score(ev) if verdict is None else None  # a reader's verdict decides instead
        reason = policy.abstain_reason(hits, quotes, self.settings, verdict, located, gate)
        if reason:
            answer = policy.abstained(question, hits, quotes, models, reason)
        elif extractive:
            answer = policy.quoted(question, hits, quotes, models)
        else:
            prompt = self.prompt(question, focused(question, hits, located) if self.settings.focus else hits, history)
            live = on_token if self.settings.show_unsupported else None
            text = self._generate(prompt, live, on_draft)
            t2 = time.perf_counter()
            answer = policy.generated(question, text, prompt.sources, hits, quotes, models, self.settings, located)
            if live:
                if answer.strategy == "llm+quote":
                    live(answer.text[len(text):])  # the passages added after the streamed answer
                on_token = None  # the rest was streamed as it was written
        if on_token:
            on_token(answer.text)
        timings = {"retrieve": (t1 - t0) * 1000, "generate": (t2 - t1) * 1000,
                   "total": (time.perf_counter() - t0) * 1000}
        if ev.readings is not None or verdict is not None:
            timings["read"] = ev.read_ms  # part of retrieve
        return replace(answer, timings_ms=timings, reader=verdict, gate=gate,
                       answer_span=located if answer.answerable else None)

    def _models(self, extractive: bool, verdict: ReaderVerdict | None) -> dict[str, str]:
        """The names of the models that answered, as `Answer.models` reports them."""
        models = {"embedder": self.store.manifest.embedder.name, "llm": "" if extractive else self.generator.name}
        return {**models, "reader": verdict.name} if verdict is not None else models

    def evidence(
        self, question: str, k: int | None = None, mode: str | None = None, where: Where | None = None
    ) -> Evidence:
        """Everything `ask` decides from, gathered once: the hits, the passages read and the
        span head's readings, the reader's verdict, the located answer, the extract."""
        hits = self.search(question, k, mode, where, rerank=False)
        t = time.perf_counter()
        hits, verdict = self._read(question, hits, self.settings.rerank)  # read once: the gate and the order
        idf = self.idf(question)
        hits, pool, readings, located = self._locate(question, hits, where, idf)
        read_ms = (time.perf_counter() - t) * 1000
        quotes = extract(question, hits, idf=idf, located=located)
        return Evidence(question, tuple(hits), tuple(pool), readings, verdict, located, quotes, idf, read_ms)

    @property
    def gate(self) -> Gate | None:
        """The answer gate (rag/answer_gate.py) the `gate` setting names; None when off."""
        if self._gate is _OFF:
            spec = self.settings.gate
            off = spec.strip().lower() in ("", "off", "0", "false", "no")  # RAG_GATE=off: an empty variable is unset
            self._gate = None if off else load_gate(None if spec == "default" else Path(spec))
        return self._gate  # type: ignore[return-value]

    def _gate_score(self, ev: Evidence) -> GateScore | None:
        gate = self.gate
        if gate is None or ev.readings is None:  # the gate was fitted on the span head's signals
            return None
        return GateScore(gate.probability(features(ev)), gate.threshold)

    def _locate(
        self, question: str, hits: list[Hit], where: Where | None, idf: dict[str, float]
    ) -> tuple[list[Hit], list[Hit], tuple[Reading, ...] | None, AnswerSpan | None]:
        """The located answer (rag/answer_locate.py) among the hits and the dense and
        lexical top 5, and the hits with the passage that holds it first (added when
        retrieval's fusion ranked it lower)."""
        if not hits or not self.settings.locate:
            return hits, hits, None, None
        spans = self.span_reader
        pool, readings = hits, None
        if spans is not None:
            pool = Retriever(self.store, self.embedder, self.settings.rrf_k, self.settings.fusion).pool(
                question, hits, LOCATE_DEPTH, where)
            readings = tuple(spans.read_spans(question, [h.text for h in pool]))
        located = locate(question, pool, readings, idf)
        if located is None:
            return hits, pool, readings, None
        holder = next(h for h in pool if h.chunk_id == located.chunk_id)
        return [holder, *(h for h in hits if h.chunk_id != located.chunk_id)], pool, readings, located

    def _generate(self, prompt: Prompt, *callbacks: Callable[[str], None] | None) -> str:
        s = self.settings
        pieces: list[str] = []
        for piece in self.generator.stream(prompt.text, s.max_answer_tokens, s.temperature, s.context_tokens):
            pieces.append(piece)
            for call in callbacks:
                if call:
                    call(piece)
        return "".join(pieces).strip()

    def close(self) -> None:
        self.store.close()

