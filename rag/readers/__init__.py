"""Readers: (question, passage) -> how strongly the passage answers the question. The
`Reader` protocol, `make_reader` (the factory that picks an adapter from the settings),
and the two uses `Index` makes of a reader's scores: the verdict that gates `ask`, and
the hits reordered by evidence (`read_hits`).

    onnx.py   a reader exported to ONNX (the packaged one, rag/models/reader/): onnxruntime
              and tokenizers only, so the query path never imports torch
    torch.py  a sentence-transformers CrossEncoder folder, or a Hugging Face
              question-answering folder; torch is imported only when one is loaded

Which adapter a folder needs is read from its files: reader.json beside an .onnx file is
an ONNX export; config.json naming a *ForQuestionAnswering architecture is a QA model;
any other config.json is loaded as a CrossEncoder. A folder may carry a reader.json with
a `threshold` whatever its kind; the `reader_threshold` setting overrides it.

Importing this package loads no numpy, onnxruntime or torch. An index records nothing
about the reader: it is a choice made at query time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

from ..errors import ConfigError, ModelNotFoundError
from ..types import Hit, ReaderVerdict

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

# Where the trained reader ships (scripts/train_reader.py writes it).
PACKAGED = Path(__file__).resolve().parents[1] / "models" / "reader"
# The hits a reader reads: `ask` retrieves 5 by default and reads them all; `rag eval`
# ranks 300 chunks for its metrics and has the reader reorder only the top of them.
READ_DEPTH = 10


class Reader(Protocol):
    name: str
    threshold: float  # a score at or above it says the passage answers the question

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        """One score per passage, higher when it answers the question better."""
        ...


def reader_path(spec: str) -> Path | None:
    """The folder (or .onnx file) a `reader` setting names; None when it is off ("")."""
    if not spec:
        return None
    if spec == "default":
        if not (PACKAGED / "reader.json").is_file():
            raise ModelNotFoundError(
                f"the packaged reader is not installed ({PACKAGED} has no reader.json); "
                "pass --reader PATH to another reader, or --no-reader")
        return PACKAGED
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"reader {spec} does not exist; pass a folder with an ONNX export (model.onnx, tokenizer.json, "
            "reader.json), a CrossEncoder or a question-answering model, or --no-reader")
    return path


def make_reader(settings: "Settings") -> Reader | None:
    """The reader the settings name (`reader`: "" off, "default" the packaged one, or a
    path), with `reader_threshold` over the folder's own threshold; None when off.

    Raises:
        ModelNotFoundError: the path is missing or holds no reader this package can load.
        MissingDependencyError: a CrossEncoder or QA folder without torch installed.
    """
    path = reader_path(settings.reader)
    if path is None:
        return None
    folder = path.parent if path.is_file() else path
    threshold = settings.reader_threshold
    if threshold is None:
        threshold = _folder_threshold(folder)
    if path.suffix == ".onnx" or ((folder / "reader.json").is_file() and any(folder.glob("*.onnx"))):
        from .onnx import OnnxReader

        reader: Reader = OnnxReader(path, settings.threads, name="packaged" if path == PACKAGED else "")
    elif (folder / "config.json").is_file():
        from .torch import load_torch_reader

        reader = load_torch_reader(folder, settings.threads)
    else:
        raise ModelNotFoundError(
            f"{path} is not a reader: expected an ONNX export (model.onnx, tokenizer.json, reader.json), "
            "a sentence-transformers CrossEncoder folder or a Hugging Face question-answering folder")
    if threshold is not None:
        reader.threshold = threshold
    log.info("reader %s, threshold %.3f", reader.name, reader.threshold)
    return reader


def _folder_threshold(folder: Path) -> float | None:
    meta = folder / "reader.json"
    if not meta.is_file():
        return None
    try:
        value = json.loads(meta.read_text(encoding="utf-8")).get("threshold")
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {meta}: {exc}") from None
    if value is not None and not isinstance(value, (int, float)):
        raise ConfigError(f"{meta}: threshold must be a number, got {value!r}")
    return value


def read_hits(
    reader: Reader, question: str, hits: Sequence[Hit], rerank: bool, depth: int = READ_DEPTH
) -> tuple[list[Hit], ReaderVerdict | None]:
    """The hits with the reader's score on the first `depth` of them (reordered by it,
    best first and renumbered, with `rerank`; the rest keep their place after them), and
    the verdict on the best-scored one (None when there are no hits).

    Each passage is read once: the same scores gate `ask` and order its sources.
    """
    top = list(hits[:depth])
    if not top:
        return list(hits), None
    scores = reader.scores(question, [h.text for h in top])
    read = [replace(h, reader_score=float(s)) for h, s in zip(top, scores)]
    best = max(read, key=lambda h: h.reader_score)  # the first of equals: retrieval's order breaks ties
    if rerank:
        read = sorted(read, key=lambda h: -h.reader_score)  # stable: ties keep retrieval's order
        read = [replace(h, rank=n) for n, h in enumerate(read, start=1)]
    verdict = ReaderVerdict(score=best.reader_score, chunk_id=best.chunk_id, threshold=reader.threshold,
                            name=reader.name)
    return [*read, *hits[depth:]], verdict
