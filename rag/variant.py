"""Which embedder variant (fp32 or int8) a command that writes an index uses."""

from __future__ import annotations

from dataclasses import replace

from .config import DEFAULT_EMBED_VARIANT, Settings
from .embedders import split_variant
from .errors import RagError
from .stores import Backend


def with_index_variant(settings: Settings, backend: Backend, rebuild: bool = False) -> Settings:
    """The settings with embed_variant decided: as set, else the existing index's own
    (so a change of the default never refuses an older index), else the default."""
    if settings.embed_variant is not None:
        return settings
    variant = "fp32" if settings.embed_runtime == "torch" else DEFAULT_EMBED_VARIANT
    if not rebuild and backend.exists():
        try:
            variant = split_variant(backend.read_manifest().embedder.name)[1]
        except RagError:
            pass  # a damaged index: the error comes where it is read for real
    return replace(settings, embed_variant=variant)
