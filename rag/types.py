"""Frozen records passed between the modules.

They hold plain data only and serialise to JSON through `to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Any, Sequence

from .answer_records import AnswerSpan, GateScore, Reading  # noqa: F401  (records of reading, re-exported)
from .errors import ConfigError


@dataclass(frozen=True)
class Page:
    """The text of one page of a file (page is None for formats without pages)."""

    source: str
    page: int | None
    text: str
    kind: str  # "markdown", "rst", "text", "html" or "pdf": steers heading detection
    offset: int = 0  # where `text` starts in the page: large text files come in segments
    # Where this text is in the document's own terms ("slide 4 notes", "sheet Revenue");
    # "" means the default for its page ("p. 3", or nothing for formats without pages).
    location: str = ""
    ocr: bool = False  # the text was recognised from an image, not read from the file


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of one page, small enough for the embedder."""

    source: str
    page: int | None
    heading: str  # heading path such as "RAG > Why chunk?", "" when there is none
    start: int  # character offsets into the page text
    end: int
    text: str
    tokens: int  # length in the embedder's word pieces, heading included
    location: str = ""  # the page's location label (see Page)
    ocr: bool = False

    def embed_text(self) -> str:
        """What gets embedded: the heading path gives a bare paragraph its topic."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class Hit:
    """A chunk returned by search, with its similarity score and 1-based rank."""

    rank: int
    score: float
    chunk_id: int
    source: str
    page: int | None
    heading: str
    start: int
    end: int
    text: str
    similarity: float | None = None  # cosine of query and chunk, whatever the ranking mode
    location: str = ""  # the chunk's own label ("slide 4 notes"); see `where`
    ocr: bool = False  # recognised from an image
    reader_score: float | None = None  # the reader's verdict on this chunk, when one read it (rag/readers/)

    @property
    def where(self) -> str:
        """A short human label of where the chunk is: its location, else "p. N" for a
        paged file, else "" (a file without pages)."""
        return self.location or ("" if self.page is None else f"p. {self.page}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "source": self.source,
            "page": self.page,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "heading": self.heading,
            "span": [self.start, self.end],
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "location": self.where,
            "ocr": self.ocr,
            **({} if self.reader_score is None else {"reader_score": round(self.reader_score, 4)}),
        }


@dataclass(frozen=True)
class Quote:
    """The exact span of a source that supports a sentence: character offsets into the
    stored text of that file's page (the text `rag` extracted), so a reader can find it."""

    id: int  # the source's number in the answer
    source: str
    page: int | None
    start: int
    end: int
    text: str
    support: float = 1.0  # share of the sentence's content words found in the span

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "page": self.page, "start": self.start, "end": self.end,
                "text": self.text, "support": round(self.support, 3)}


@dataclass(frozen=True)
class Citation:
    """A source number the answer cites; `hit` is None when no source has that number."""

    id: int
    hit: Hit | None
    attributed: bool = False  # True: the answer did not cite it, but a sentence restates it
    quote: Quote | None = None  # the span of the source that best supports what cites it

    @property
    def valid(self) -> bool:
        return self.hit is not None

    def to_dict(self) -> dict[str, Any]:
        h = self.hit
        return {
            "id": self.id,
            "source": h.source if h else None,
            "page": h.page if h else None,
            "location": h.where if h else None,
            "ocr": h.ocr if h else False,
            "score": round(h.score, 6) if h else None,
            "text": h.text if h else None,
            "valid": self.valid,
            "attributed": self.attributed,
            "quote": self.quote.to_dict() if self.quote else None,
        }


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, the source numbers it rests on, and whether they support it."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    quotes: tuple[Quote, ...] = ()  # the best supporting span in each cited source
    # Why an unsupported sentence is not part of the answer: "unsupported" (its sources do
    # not say it), "mismatch" (a source shares its words but not its names or numbers, or
    # states the number of something else), "echo" (it copies the prompt's instructions or
    # a source's header) or "question" (it restates the question); "" when supported.
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": list(self.citations), "supported": self.supported,
                "quotes": [q.to_dict() for q in self.quotes], "reason": self.reason or None}


@dataclass(frozen=True)
class ReaderVerdict:
    """The reader's best score among the passages it read, and on which chunk; `ask`
    answers only when it reaches the threshold."""

    score: float
    chunk_id: int
    threshold: float
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "passage_id": self.chunk_id, "threshold": round(self.threshold, 4)}


@dataclass(frozen=True)
class Answer:
    """A generated answer with the sources it was given and the ones it cites."""

    question: str
    text: str
    answerable: bool
    citations: tuple[Citation, ...]
    sources: tuple[Hit, ...]  # the hits that went into the prompt, numbered from 1
    hits: tuple[Hit, ...]  # everything retrieval returned
    models: dict[str, str]
    timings_ms: dict[str, float]
    sentences: tuple["Sentence", ...] = ()
    strategy: str = "llm"  # "llm", "llm+quote", "extractive", "fallback" (LLM unsupported, quotes given) or "abstain"
    draft: str = ""  # the LLM's own answer, whole, whenever the LLM wrote one (`text` may leave some of it out)
    coverage: float = 0.0  # weighted share of the question's words the best source passage covers
    missing: tuple[str, ...] = ()  # names and numbers of the question that no source mentions
    # With "abstain", why (rag/answer.py ABSTAIN_REASONS): "no_hits", "missing_terms",
    # "far", "not_covered", "not_answered" (the reader's verdict) or "model_refused".
    abstain_reason: str = ""
    reader: ReaderVerdict | None = None  # None: no reader read the passages
    answer_span: AnswerSpan | None = None  # where the answer was located (None: nothing located, or a refusal)
    gate: GateScore | None = None  # the answer gate's verdict (None: the gate is off)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "answerable": self.answerable,
            "citations": [c.to_dict() for c in self.citations],
            "hits": [h.to_dict() for h in self.hits],
            "sources": [h.to_dict() for h in self.sources],
            "models": dict(self.models),
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "sentences": [x.to_dict() for x in self.sentences],
            "strategy": self.strategy,
            "llm_answer": self.draft or None,
            "coverage": round(self.coverage, 4),
            "missing": list(self.missing),
            "abstain_reason": self.abstain_reason or None,
            "reader": self.reader.to_dict() if self.reader else None,
            "answer_span": self.answer_span.to_dict() if self.answer_span else None,
            "gate": self.gate.to_dict() if self.gate else None,
        }


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run changed; `files` and `chunks` count the whole index after it."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[FileFailure, ...] = ()
    warnings: tuple[FileFailure, ...] = ()
    repaired: tuple[str, ...] = ()  # files whose mis-decoded text (mojibake) was repaired
    files: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_from_cache: int = 0  # of chunks_embedded, those whose vector the embedding cache held
    seconds: float = 0.0
    index_dir: str = ""
    skipped: dict[str, int] = field(default_factory=dict)  # files no loader reads, by suffix
    moved: tuple[tuple[str, str], ...] = ()  # (old name, new name): same content, chunks kept
    skipped_files: tuple[FileFailure, ...] = ()  # each file no loader reads, by its path in its folder

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "failed": [asdict(f) for f in self.failed],
            "files": self.files,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "warnings": [asdict(f) for f in self.warnings],
            "repaired": list(self.repaired),
            "chunks_embedded": self.chunks_embedded,
            "chunks_from_cache": self.chunks_from_cache,
            "index_dir": self.index_dir,
            "skipped": dict(self.skipped),
            "skipped_files": [asdict(f) for f in self.skipped_files],
            "moved": len(self.moved),
            "paths": {
                "added": list(self.added),
                "updated": list(self.updated),
                "removed": list(self.removed),
                "moved": [{"from": old, "to": new} for old, new in self.moved],
            },
        }


@dataclass(frozen=True)
class Progress:
    """A progress event from ingest; the CLI draws bars from these."""

    stage: str  # "load" or "embed"
    done: int
    total: int
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def file_type(source: str) -> str:
    """A file's type as `--where type=` names it: its suffix, lowercased, without the dot."""
    return PurePosixPath(source).suffix.lower().lstrip(".")


@dataclass(frozen=True)
class Where:
    """Hit filters (`--where`): every given condition must hold. Both stores and the
    retriever apply them, so they live here rather than with either."""

    sources: tuple[str, ...] = ()  # globs over the source path (a glob without "/" also matches the file name)
    types: tuple[str, ...] = ()  # file types: "pdf", "md", ...

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "Where":
        """From `source=GLOB` / `type=EXT` strings (as given to --where)."""
        sources: list[str] = []
        types: list[str] = []
        for spec in specs:
            key, sep, value = spec.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value or key not in ("source", "type"):
                raise ConfigError(f"--where {spec!r}: use source=GLOB or type=EXT (e.g. type=pdf)")
            (sources if key == "source" else types).append(value if key == "source" else value.lower().lstrip("."))
        return cls(tuple(sources), tuple(types))

    def __bool__(self) -> bool:
        return bool(self.sources or self.types)

    def file_types(self) -> frozenset[str]:
        """The file types (`file_type`) the type conditions accept: "md" takes "markdown" too."""
        return frozenset(self.types) | ({"markdown"} if "md" in self.types else set())

    def accepts(self, source: str) -> bool:
        name = PurePosixPath(source).name
        if self.sources and not any(fnmatch(source, g) or ("/" not in g and fnmatch(name, g)) for g in self.sources):
            return False
        return not self.types or file_type(source) in self.file_types()
