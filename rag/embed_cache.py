"""Old home of the embedding cache, now rag/embedders/cache.py."""
# Temporary re-export while issue 14 moves callers; removed at the end of the issue.

from .embedders.cache import CachedEmbedder, cache_file  # noqa: F401
