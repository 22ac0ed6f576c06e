"""Old home of ingest, Index and evaluation, kept importable for one release.

New code imports from rag.ingestion, rag.index, rag.answer and rag.evaluate (or from `rag`).
"""

from .answer import add_source_passages
from .evaluate import evaluate, evaluate_qa
from .index import Index
from .ingestion import ingest

__all__ = ["Index", "add_source_passages", "evaluate", "evaluate_qa", "ingest"]
