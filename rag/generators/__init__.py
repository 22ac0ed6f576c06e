"""Generators: prompt -> answer text, streamed. The `Generator` protocol and
`make_generator`, the factory that picks an adapter from the settings.

    llama_cpp.py      a local GGUF file through llama-cpp-python (the default)
    openai_compat.py  any OpenAI-compatible server (llama.cpp server, Ollama, vLLM)

The adapters are imported when one is made, so importing this package loads neither
llama-cpp-python nor the HTTP machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Generator", "make_generator"]


class Generator(Protocol):
    name: str
    context_size: int  # the model's training context

    def count_tokens(self, text: str) -> int: ...

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str: ...

    def stream(self, prompt: str, max_tokens: int, temperature: float, n_ctx: int) -> Iterator[str]: ...


def make_generator(settings: "Settings") -> Generator:
    """The adapter the settings ask for: a local GGUF through llama.cpp, or an OpenAI-compatible server.

    Raises:
        RagError: the model cannot be loaded or the server cannot be reached.
    """
    if settings.llm_backend == "openai":
        from .openai_compat import OpenAIGenerator

        return OpenAIGenerator(
            settings.base_url or "", settings.server_model, api_key=settings.api_key,
            context_size=settings.context_tokens, timeout=settings.llm_timeout,
        )
    from .llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(settings.gguf_path, settings.n_threads)
