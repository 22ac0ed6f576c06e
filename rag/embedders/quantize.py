"""The int8 variant of an ONNX export: its weight matrices quantized to 8 bits.

onnxruntime's dynamic quantization, per output channel, of the MatMuls that multiply by a
weight matrix; activations are quantized on the fly, batch by batch, so no calibration
set is needed. Kept in fp32, because quantizing them cost the most agreement with the
fp32 vectors (cosine to fp32 on 160 SciFact abstracts, min / mean): the two
activation-by-activation MatMuls of each attention (query x key, weights x value:
quantizing them as well gave 0.990 / 0.995), and the feed-forward output projections,
whose inputs carry the GELU's outliers (weights only: 0.992 / 0.995; without those:
0.996 / 0.998). Embeddings (Gather), LayerNorm and the pooling stay fp32 too. The
variant is made once from the fp32 export, beside it, and reused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import MissingDependencyError, RagError

log = logging.getLogger(__name__)

VARIANTS = ("fp32", "int8")


def int8_path(fp32_file: Path) -> Path:
    return fp32_file.with_name("model.int8.onnx")


def _kept_in_fp32(model: "object") -> list[str]:
    """Names of the MatMul nodes that stay fp32 (see the module docstring)."""
    graph = model.graph  # type: ignore[attr-defined]
    weights = {i.name for i in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        by_activations = not any(name in weights for name in node.input)
        ffn_out = "/output/dense/" in node.name and "/attention/" not in node.name
        if by_activations or ffn_out:
            keep.append(node.name)
    return keep


def quantize(fp32_file: Path, target: Path) -> Path:
    """Write the int8 variant of an fp32 export at `target` (atomically)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingDependencyError(f"onnx and onnxruntime are needed to make the int8 embedder ({exc})") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        kept = _kept_in_fp32(onnx.load(str(fp32_file), load_external_data=False))
        logging.getLogger("root").disabled = True  # onnxruntime's advice to pre-process, on the root logger
        try:
            quantize_dynamic(str(fp32_file), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=kept)
        finally:
            logging.getLogger("root").disabled = False
        os.replace(tmp, target)
    except Exception as exc:
        raise RagError(f"cannot quantize {fp32_file} to int8 in {target.parent}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("quantized %s to %s (%d MatMuls kept fp32)", fp32_file, target, len(kept))
    return target
