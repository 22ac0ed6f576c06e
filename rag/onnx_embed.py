"""Old home of the ONNX Runtime embedder, now rag/embedders/onnx.py."""
# Temporary re-export while issue 14 moves callers; removed at the end of the issue.

from .embedders.base import count_tokens_with, counting_tokenizer  # noqa: F401
from .embedders.onnx import EXPORT_VERSION, MATCH, OnnxEmbedder, UnsupportedModel, export, export_path  # noqa: F401
