"""Moved to rag/stores/vector_index.py (the FAISS index type policy belongs to the FAISS store)."""

# Temporary re-export while issue 14 moves callers; removed at the end of the issue.
from .stores.vector_index import (  # noqa: F401
    DEFAULT_ANN_FROM,
    RECALL_TARGET,
    STORAGES,
    build_ivf,
    calibration_queries,
    cells_for,
    describe,
    fit,
    is_ivf,
    load_faiss,
    new_flat,
    prepare,
    recall_at_10,
)
