"""rag: local retrieval-augmented generation over your own documents.

    from rag import Index, ingest
    ingest(["docs/"], index_dir="indexes/default")
    index = Index.open("indexes/default")
    hits = index.search("what is a context window?", k=5)
    answer = index.ask("what is a context window?")
"""

from typing import Any

# Names resolve on first use, so `import rag` (and `rag --help`) loads no numpy or models.
_EXPORTS = {
    "Settings": "config",
    "BackendError": "errors", "ConfigError": "errors", "IndexCorruptError": "errors", "IndexMismatchError": "errors",
    "IndexNotFoundError": "errors", "LoaderError": "errors", "MissingDependencyError": "errors",
    "ModelNotFoundError": "errors", "RagError": "errors",
    # rag.ingestion, not rag.ingest: a submodule of that name would shadow the function.
    "Index": "index", "ingest": "ingestion", "Manifest": "manifest",
    "Answer": "types", "Chunk": "types", "Citation": "types", "Hit": "types",
    "IngestReport": "types", "Page": "types",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


__version__ = "0.1.0"

__all__ = [
    "Answer", "BackendError", "Chunk", "Citation", "ConfigError", "Hit", "Index", "IndexCorruptError",
    "IndexMismatchError", "IndexNotFoundError", "IngestReport", "LoaderError",
    "Manifest", "MissingDependencyError", "ModelNotFoundError", "Page", "RagError", "Settings", "ingest",
]
