"""Old home of the generator protocol, factory and llama.cpp adapter, now rag/generators/."""
# Temporary re-export while issue 14 moves callers; removed at the end of the issue.

from .generators import Generator, make_generator  # noqa: F401
from .generators.llama_cpp import (  # noqa: F401
    DEFAULT_LLM_FILE, DEFAULT_LLM_PACKAGE, LlamaCppGenerator, default_llm_path, guard_amx, resolve_llm_path,
)
