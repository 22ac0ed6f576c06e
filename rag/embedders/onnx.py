"""The ONNX Runtime adapter: a sentence-transformers model run without torch.

A sentence-transformers model directory (a BERT-like transformer, mean or CLS pooling,
optionally normalised) is exported to ONNX once, with torch, into a cache folder named
after the model's files (`export`). Every later process embeds with onnxruntime and
tokenizers alone, which import in about a tenth of a second where torch and
sentence-transformers take five. The export is checked against torch before it is kept:
its vectors must match (cosine at least 0.9999), so an index built with either runtime
holds the same vectors and the manifest does not need to know which one ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import default_cache_dir
from ..errors import MissingDependencyError, ModelNotFoundError, RagError
from .base import (
    count_tokens_with, counting_tokenizer, model_fingerprint, resolve_embed_model, spec_for, variant_name,
)
from .quantize import int8_path, quantize

log = logging.getLogger(__name__)

EXPORT_VERSION = "2"  # bump when the exported graph changes; old exports are then redone (2: weights in a side file)
MATCH = 0.9999  # least cosine between an export's vectors and torch's
_PROBES = ["A context window is the text a model can see at once.", "FAISS stores vectors.", "x"]


class UnsupportedModel(RagError):
    """The model directory holds something this adapter cannot run (the torch one can)."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from None


def _layout(path: Path) -> tuple[str, int]:
    """(pooling, max_seq_length) of a sentence-transformers directory."""
    modules = _read_json(path / "modules.json") or []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    pooling_dir = next((m.get("path", "") for m in modules if m.get("type", "").endswith("Pooling")), "1_Pooling")
    unknown = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unknown:
        raise UnsupportedModel(f"{path} has modules the ONNX runtime does not run: {', '.join(unknown)}")
    pool = _read_json(path / pooling_dir / "config.json") or {"pooling_mode_mean_tokens": True}
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        pooling = "mean"
    elif modes == ["pooling_mode_cls_token"]:
        pooling = "cls"
    else:
        raise UnsupportedModel(f"{path} pools with {', '.join(modes) or 'nothing'}; only mean or CLS runs on ONNX")
    st = _read_json(path / "sentence_bert_config.json") or {}
    config = _read_json(path / "config.json") or {}
    max_len = int(st.get("max_seq_length") or config.get("max_position_embeddings") or 512)
    return pooling, max_len


def export_path(path: Path, fingerprint: str | None = None, cache_dir: Path | None = None) -> Path:
    """Where the export of this model directory lives under the cache folder (the
    `cache_dir` setting; None: its default): named by the directory's files
    (`model_fingerprint`, passed in when already known), so a changed model gets a new export."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}\n{fingerprint or model_fingerprint(path)}".encode())
    folder = default_cache_dir() if cache_dir is None else cache_dir
    return folder / "onnx" / digest.hexdigest()[:20] / "model.onnx"


def export(path: Path, target: Path) -> Path:
    """Export the transformer of a model directory to ONNX at `target` (atomically), after
    checking that its vectors match sentence-transformers'. Needs torch."""
    from .torch import SentenceTransformerEmbedder

    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(f"torch is needed once, to export the embedder to ONNX ({exc})") from None
    reference = SentenceTransformerEmbedder(spec_for(path))
    transformer = reference._model[0].auto_model.eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = reference._tokenizer(["an example sentence"], return_tensors="pt")
    inputs = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in names)

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as fixed
            torch.onnx.export(
                Wrapped(transformer), inputs, str(tmp), input_names=names, output_names=["hidden"],
                dynamic_axes={**axes, "hidden": {0: "batch", 1: "tokens"}}, opset_version=17, dynamo=False,
            )
        got = OnnxEmbedder(None, model_path=path, onnx_file=tmp).embed(_PROBES)
        want = reference.embed(_PROBES)
        unit = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
        worst = float(np.min(np.sum(got * want, axis=1) / np.maximum(unit, 1e-12)))
        if worst < MATCH:
            raise RagError(f"the ONNX export of {path} does not match torch (cosine {worst:.6f}); not kept")
        _keep(tmp, target)
    except Exception as exc:
        if isinstance(exc, RagError):
            raise
        raise RagError(f"cannot export {path} to ONNX in {target.parent}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s", path, target)
    return target


def _keep(checked: Path, target: Path) -> None:
    """Put a checked export in place as `target` plus its weights in `target`.data.

    Weights in a side file are mapped by onnxruntime instead of copied out of the graph:
    creating the session (every `rag search` does) took 0.19 s instead of 0.36 s for
    all-MiniLM-L6-v2, with identical vectors (bench/startup.py).
    """
    import onnx

    staging = target.parent / f".staging.{os.getpid()}"
    staging.mkdir(exist_ok=True)
    weights = target.name + ".data"
    try:
        onnx.save_model(onnx.load(str(checked)), str(staging / target.name), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=weights, size_threshold=1024)
        shutil.copymode(staging / target.name, staging / weights)  # onnx writes it 0600; readable like the graph
        # Weights first: a process that finds the graph finds its weights too.
        os.replace(staging / weights, target.with_name(weights))
        os.replace(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class OnnxEmbedder:
    """Any supported local sentence-transformers model, through onnxruntime.

    The export is made on first use (with torch), under `cache_dir` (the setting; None:
    its default), and reused from then on; `onnx_file` names an export to run instead.
    `variant` "int8" runs the quantized export (made from the fp32 one on first use) and
    is part of the name an index records.
    """

    def __init__(
        self, spec: str | None = None, threads: int | None = None, *, cache_dir: Path | None = None,
        model_path: Path | None = None, onnx_file: Path | None = None, variant: str = "fp32",
    ) -> None:
        name, path = resolve_embed_model(spec if model_path is None else spec_for(model_path))
        self.name, self.variant = variant_name(name, variant), variant
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(f"onnxruntime and tokenizers are needed for the ONNX embedder ({exc})") from None
        if not (path / "tokenizer.json").is_file():
            raise UnsupportedModel(f"{path} has no tokenizer.json, which the ONNX runtime needs")
        self.pooling, max_len = _layout(path)
        self.path = path
        self.fingerprint = model_fingerprint(path)
        self.tokenizer_file = path / "tokenizer.json"  # what ingest workers count tokens with
        self.max_tokens = max_len - 2  # [CLS] and [SEP]
        onnx_file = onnx_file or export_path(path, self.fingerprint, cache_dir)
        if not onnx_file.is_file():
            export(path, onnx_file)
        if variant == "int8":
            fp32_file, onnx_file = onnx_file, int8_path(onnx_file)
            if not onnx_file.is_file():
                quantize(fp32_file, onnx_file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's choice, one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelNotFoundError(f"cannot load the ONNX export {onnx_file}: {exc}; delete it to redo it") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_len)
        self._counter: Any = None  # made on the first count: a search never counts (saves ~0.03-0.06 s)
        self._pad = self._tokenizer.token_to_id("[PAD]") or 0
        self.dim = int(self._session.get_outputs()[0].shape[-1] or self.embed(["x"]).shape[1])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._counter is None:
            self._counter = counting_tokenizer(self.tokenizer_file)
        return count_tokens_with(self._counter, texts)

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        dim = getattr(self, "dim", None) or 0
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts))
        # Sorting by length keeps each batch's padding small; results go back in order.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids), reverse=True)
        out: np.ndarray | None = None
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            vecs = self._run([encoded[j] for j in idx])
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
            if progress:
                progress(len(idx))
        assert out is not None
        return out

    def _run(self, batch: Sequence[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64)
        for row, e in enumerate(batch):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self.pooling == "cls":
            vecs = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            vecs = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        # Unit length always, as the torch adapter (normalize_embeddings=True) gives and the
        # inner-product index assumes, whether or not the model has a Normalize module.
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs.astype(np.float32)
