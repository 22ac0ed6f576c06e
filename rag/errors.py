"""Errors the library raises; the CLI turns them into one clean line each.

Every message says what failed, where (a path or a model) and how to fix it.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: anything a user can act on."""


class ConfigError(RagError):
    """A setting has a value that cannot work (bad number, missing path)."""


class ModelNotFoundError(RagError):
    """An embedder directory or GGUF file does not exist or cannot be loaded."""


class MissingDependencyError(RagError):
    """An optional library needed for this step is not installed."""


class BackendError(RagError):
    """A generation server could not be reached, refused a request or sent something unreadable."""


class IndexNotFoundError(RagError):
    """No index has been built at the given directory."""


class IndexMismatchError(RagError):
    """The index was built with other settings (embedder, dimension, chunking)."""


class IndexCorruptError(RagError):
    """A file of the index is damaged or does not agree with the others."""


class IndexLockedError(RagError):
    """Another process is writing the same index."""


class LoaderError(RagError):
    """One input file could not be read; ingestion reports it and goes on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def unexpected_reason(exc: BaseException, what: str) -> str:
    """The reason recorded for a file whose reading raised `exc`, an error no loader
    expected (a library's own exception on a malformed file): its type and first line."""
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"cannot read this {what} file ({type(exc).__name__}{': ' + detail if detail else ''})"
