"""Old home of the OpenAI-compatible adapter, now rag/generators/openai_compat.py."""
# Temporary re-export while issue 14 moves callers; removed at the end of the issue.

from .generators.openai_compat import CHAT_PREFIX, OpenAIGenerator, estimate_tokens, parse_chat, sse_data  # noqa: F401
