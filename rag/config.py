"""Settings: defaults < config file (rag.toml) < RAG_* environment variables < explicit arguments.

Built once per command and passed down; nothing reads the environment after that.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

# bench/chunk_recall.py on the sample corpus question set (71 questions): 160 word pieces
# with 32 of overlap tied 254/0 for the best recall@5 (0.972, against 0.944 for naive
# 150-word windows) and beat it at recall@10; being smaller it costs ~40% fewer prompt
# tokens for the same k, and prompt tokens are what delays the first answer token.
DEFAULT_CHUNK_TOKENS = 160
DEFAULT_CHUNK_OVERLAP = 32
# Top-1 cosine similarity below which `ask` says the documents lack the answer without
# calling the LLM. With the default chunking the lowest answerable top-1 on the question
# set was 0.302, and 4 of the 14 unanswerable questions scored under 0.25 (0 answerable);
# bench/chunk_recall.py prints both distributions. A first floor, not a calibration:
# the two distributions overlap, so most unanswerable questions still reach the LLM.
DEFAULT_MIN_SCORE = 0.25
DEFAULT_MIN_COVERAGE = 0.2

# llama.cpp prefills SmolLM2-135M at 230-345 tokens/s on 2 cores (bench/ttft.py), so
# every prompt token costs ~3 ms before the first answer token. bench/context_curve.py measured the
# question set from 768 to 3072 tokens of context: 768 (about 3.6 of the top 5 chunks
# after the answer's 192 tokens and the template) answered as accurately as 1536
# (0.90), with citation precision 0.95 against 0.96, and its first token came after
# 1.3 s instead of 3.6 s; more context only added sources the tiny model cited wrongly.
# --context-tokens raises it up to the model's own context.
DEFAULT_CONTEXT_TOKENS = 768
DEFAULT_MAX_ANSWER_TOKENS = 192
DEFAULT_TOP_K = 5
# Retrieval mode; bench/retrieval_modes.py and `rag eval` compare the three on SciFact
# train (see the README): fusing BM25 and dense rankings beats either alone
# (nDCG@10 0.736 against 0.682 for each).
DEFAULT_MODE = "hybrid"

ENV_PREFIX = "RAG_"
# Environment names that differ from the field name.
_ENV_ALIASES = {
    "gguf_path": "RAG_MODEL", "max_answer_tokens": "RAG_MAX_TOKENS",
    "llm_backend": "RAG_LLM", "server_model": "RAG_LLM_MODEL",
}
# Earlier names of settings, still read from rag.toml and Settings.load: both said
# "model" for two different things (a GGUF file, a name a server knows).
_RENAMED = {"llm_model": "gguf_path", "llm_model_name": "server_model"}
LLM_BACKENDS = ("llama.cpp", "openai")
EMBED_RUNTIMES = ("auto", "onnx", "torch")  # rag/embedders/ make_embedder
EMBED_VARIANTS = ("fp32", "int8")  # rag/embedders/quantize.py
DEFAULT_EMBED_VARIANT = "fp32"  # a new index's; int8 is opt-in (why: docs/ingest-performance.md)
VECTOR_STORAGES = ("float32", "float16")  # rag/stores/vector_index.py
DEFAULT_ANN_FROM = 200_000  # chunks from which a new index is IVF, not flat (rag/stores/vector_index.py)
STORES = ("faiss", "milvus")  # rag/stores/
OCR_MODES = ("auto", "always", "never")  # rag/loaders/ocr.py
ENGINES = ("local", "ray")  # rag/engines/


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("indexes/default")
    # Where the index lives: "faiss" (files under index_dir) or "milvus" (collections in a
    # Milvus database: a local milvus-lite file, or a server/cluster URL); rag/stores/.
    store: str = "faiss"
    milvus_uri: str | None = None  # None: index_dir/milvus.db (milvus-lite)
    milvus_collection: str = "rag"  # prefix of the index's collections
    milvus_token: str | None = field(default=None, repr=False)  # "user:password" or an API key
    embed_model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    # "auto": ONNX Runtime (exported once with torch, same vectors), torch if that fails;
    # "onnx" or "torch" to insist on one (see rag/embedders/onnx.py).
    embed_runtime: str = "auto"
    # "int8": the ONNX export with its weight matrices quantized (rag/embedders/quantize.py);
    # an index records the variant it was built with and is queried with it. None: an
    # existing index's own variant, DEFAULT_EMBED_VARIANT for a new one.
    embed_variant: str | None = None
    gguf_path: str | None = None  # the GGUF file llama.cpp runs; None: the packaged SmolLM2-135M-Instruct
    llm_backend: str = "llama.cpp"  # "llama.cpp" (a local GGUF) or "openai" (a server)
    base_url: str | None = None  # the OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1
    server_model: str | None = None  # the model name sent to that server; None: the first it lists
    # Sent as a Bearer token; repr=False keeps it out of any printed Settings.
    api_key: str | None = field(default=None, repr=False)
    llm_timeout: float = 120.0  # seconds to wait for the server's next byte
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    top_k: int = DEFAULT_TOP_K
    mode: str = DEFAULT_MODE  # "dense", "lexical" or "hybrid"
    fusion: str = "convex"  # how hybrid mode fuses: "convex" or "rrf"
    rrf_k: int = 60
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS
    temperature: float = 0.0
    min_score: float = DEFAULT_MIN_SCORE
    # The least share of the question (content words weighted by rarity) that the best
    # source passage must cover to answer; below it `ask` abstains (see rag/verify.py).
    min_coverage: float = DEFAULT_MIN_COVERAGE
    # Abstain when a name or number of the question (GPT-4, 1998) appears in no source.
    check_terms: bool = True
    # Abstain when the question asks for a number, a year or a name and no passage holds one
    # about its subject (rag/answer_kind.py).
    check_answer_kind: bool = True
    # When no sentence of the LLM's answer is supported by its sources, answer with quotes
    # from them instead (rag eval --qa: extractive answers were right 75% of the time
    # against 28% for SmolLM2-135M's own words).
    fallback: bool = True
    # How `ask` answers: "llm" (the model's answer, checked), "grounded" (the same, plus
    # the extractive answer's passages it does not already say) or "extractive"
    # (source sentences only, no model). Chosen by bench/answer_strategies.py.
    strategy: str = "grounded"
    # Keep the LLM's sentences that its sources do not support (and echoes of the prompt,
    # restatements of the question) in the answer, marked, instead of leaving them out
    # (rag/answer.py); they are in the JSON's `sentences` and `llm_answer` either way.
    show_unsupported: bool = False
    # The reader (rag/readers/) that reads the top hits and says whether one answers the
    # question: "" off, "default" the packaged one (rag/models/reader/), or a path to an
    # ONNX export, a CrossEncoder or a question-answering folder. When on, `ask` abstains
    # when its best score is under its threshold (the folder's reader.json, or
    # reader_threshold). Off by default: see the README's "Reading the passages" for the
    # figures that decided it. The index records nothing about it.
    reader: str = ""
    reader_threshold: float | None = None
    # Order the hits the reader read by its score, best first (search, ask, eval).
    rerank: bool = False
    # Locate the answer (rag/answer_locate.py): read the candidate passages (the hits plus
    # the dense and lexical top 5) with a reader's span head (the `reader`'s when it has
    # one, else the packaged reader's) and pick the sentence and span that answer. Off
    # (RAG_LOCATE=0): word overlap alone picks the sentence, as before, and the gate,
    # which needs the span head's signals, is off too.
    locate: bool = True
    # The answer gate (rag/answer_gate.py): "default" the one fitted on the calibration
    # questions (rag/models/gate.json), a path to another, or "off" for the separate checks
    # (similarity floor, coverage, the reader's threshold) used before it. It needs the
    # span head's signals, so it is off when `locate` is.
    gate: str = "default"
    # For a fact question (what a term is or stands for, a number, a year, a name), give the
    # LLM the located sentence alone as its first source, the other hits after it
    # (rag/answer_locate.py `focused`). Chosen by bench/answer_strategies.py: see docs/reading.md.
    focus: bool = True
    # From this many chunks a new index searches approximately (IVF) instead of exactly,
    # and its vectors are kept as float32 or float16; both are recorded in the manifest
    # when an index is created and kept by later ingests (rag/stores/vector_index.py).
    ann_from: int = DEFAULT_ANN_FROM
    vector_storage: str = "float32"
    # Processes that load and chunk files ahead of the embedder during ingest (0: the
    # ingest process does it itself, between embedding batches); rag/prefetch.py.
    workers: int = 0
    # Where ingest loads, chunks and embeds new and changed files (rag/engines/): "local"
    # (this process, with `workers`) or "ray" (a Ray cluster). The driver plans and commits
    # either way. `ray_address`: None starts a Ray instance on this machine; "auto" joins
    # the cluster this machine belongs to; "ray://HOST:PORT" a remote cluster's client port.
    engine: str = "local"
    ray_address: str | None = None
    # Reuse the vector of any text embedded before with the same model (rag/embedders/cache.py).
    embed_cache: bool = True
    threads: int | None = None  # None: the cores other processes are not busy on (rag/cpu.py)
    # Texts per forward pass of the embedder. Small batches of length-sorted texts ran
    # fastest here (ONNX Runtime, SciFact chunks: 94 chunks/s at 8, 76 at 32, 65 at 64;
    # torch the same way): they stay in the CPU's caches and pad little.
    batch_size: int = 8
    file_timeout: float = 120.0  # seconds one PDF may take to parse
    # Optical character recognition (rag/loaders/ocr.py): "auto" reads images and the PDF
    # pages that have no text layer, "always" also re-reads PDF pages that have one,
    # "never" reads neither.
    ocr: str = "auto"
    # Where the ONNX export and the embedding cache live (env RAG_CACHE_DIR, rag.toml
    # cache_dir). `Settings.load` fills in the default from the environment it is given;
    # a Settings built directly takes it from the process environment.
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())

    @property
    def llm_model(self) -> str | None:
        """The earlier name of `gguf_path`, still readable by library callers."""
        return self.gguf_path

    @property
    def llm_model_name(self) -> str | None:
        """The earlier name of `server_model`, still readable by library callers."""
        return self.server_model

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ConfigError(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2 + 1:
            raise ConfigError(
                f"chunk_overlap must be between 0 and half of chunk_tokens ({self.chunk_tokens}), "
                f"got {self.chunk_overlap}"
            )
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.max_answer_tokens < 1:
            raise ConfigError(f"max_answer_tokens must be at least 1, got {self.max_answer_tokens}")
        if self.context_tokens <= self.max_answer_tokens:
            raise ConfigError(
                f"context_tokens ({self.context_tokens}) must be larger than "
                f"max_answer_tokens ({self.max_answer_tokens})"
            )
        if self.mode not in ("dense", "lexical", "hybrid"):
            raise ConfigError(f"mode must be dense, lexical or hybrid, got {self.mode!r}")
        if self.strategy not in ("llm", "grounded", "extractive"):
            raise ConfigError(f"strategy must be llm, grounded or extractive, got {self.strategy!r}")
        if self.embed_runtime not in EMBED_RUNTIMES:
            raise ConfigError(f"embed_runtime must be auto, onnx or torch, got {self.embed_runtime!r}")
        if self.embed_variant is not None and self.embed_variant not in EMBED_VARIANTS:
            raise ConfigError(f"embed_variant must be fp32 or int8, got {self.embed_variant!r}")
        if self.vector_storage not in VECTOR_STORAGES:
            raise ConfigError(f"vector_storage must be float32 or float16, got {self.vector_storage!r}")
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, got {self.workers}")
        if self.ann_from < 1:
            raise ConfigError(f"ann_from must be at least 1, got {self.ann_from}")
        if self.fusion not in ("convex", "rrf"):
            raise ConfigError(f"fusion must be convex or rrf, got {self.fusion!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.ocr not in OCR_MODES:
            raise ConfigError(f"ocr (--ocr) must be auto, always or never, got {self.ocr!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine (--engine) must be local or ray, got {self.engine!r}")
        address = self.ray_address
        if address and not (address == "auto" or re.fullmatch(r"(ray://)?[^\s/:]+:\d+", address)):
            raise ConfigError(f"ray_address (--ray-address) must be auto, ray://HOST:PORT or HOST:PORT, "
                              f"got {self.ray_address!r}")
        self._check_backend()

    def _check_backend(self) -> None:
        if self.llm_backend not in LLM_BACKENDS:
            raise ConfigError(f"llm_backend (--llm) must be llama.cpp or openai, got {self.llm_backend!r}")
        if self.llm_backend == "openai" and not self.base_url:
            raise ConfigError(
                "--llm openai needs the server's URL: pass --base-url http://HOST:PORT/v1 or set RAG_BASE_URL"
            )
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.llm_timeout <= 0:
            raise ConfigError(f"llm_timeout must be positive, got {self.llm_timeout}")
        if self.store not in STORES:
            raise ConfigError(f"store (--store) must be one of {', '.join(STORES)}, got {self.store!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", self.milvus_collection):
            raise ConfigError(
                f"milvus_collection must be letters, digits and underscores (not starting with a digit), "
                f"got {self.milvus_collection!r}"
            )

    @property
    def milvus_target(self) -> str:
        """The Milvus URI to use: the setting, else a milvus-lite file in index_dir."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    @property
    def n_threads(self) -> int:
        """Generation threads: the setting, else rag.cpu.auto_threads() (the free cores)."""
        if self.threads:
            return self.threads
        from .cpu import auto_threads

        return auto_threads()

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> "Settings":
        """Merge the layers; `None` values in `overrides` mean "not given".

        The config file is `RAG_CONFIG` if set, else `rag.toml` in the current
        directory if it exists; its keys are the field names (or the earlier names
        in _RENAMED, as are the keys of `overrides`).
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = config_file or (Path(env["RAG_CONFIG"]) if env.get("RAG_CONFIG") else Path("rag.toml"))
        if path.is_file():
            values.update(_read_toml(path))
        elif config_file or env.get("RAG_CONFIG"):
            raise ConfigError(f"config file {path} does not exist")
        for f in fields(cls):
            name = _ENV_ALIASES.get(f.name, ENV_PREFIX + f.name.upper())
            if env.get(name):
                values[f.name] = _coerce(f.name, env[name], f"environment variable {name}")
        for key, value in (overrides or {}).items():
            if value is not None:
                values[_RENAMED.get(key, key)] = value
        values.setdefault("cache_dir", default_cache_dir(env))
        return cls()._merged(values)

    def _merged(self, values: Mapping[str, Any]) -> "Settings":
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = dict(values)
        if "index_dir" in values:
            values["index_dir"] = Path(values["index_dir"])
        if "cache_dir" in values:
            values["cache_dir"] = Path(values["cache_dir"]).expanduser()
        return replace(self, **values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    data = {_RENAMED.get(k, k): v for k, v in data.items()}
    return {k: _coerce(k, v, f"config file {path}") if isinstance(v, str) else v for k, v in data.items()}


def settings_for(settings: Settings | None, index_dir: str | Path | None = None) -> Settings:
    """The settings an entry point uses: the given ones (else rag.toml and the environment),
    with `index_dir` when one is given."""
    settings = settings or Settings.load()
    return settings._merged({"index_dir": index_dir}) if index_dir is not None else settings


def _coerce(name: str, raw: str, where: str) -> Any:
    typ = {f.name: f.type for f in fields(Settings)}.get(name)
    if typ is None:
        return raw
    if "bool" in str(typ):
        value = raw.strip().lower()
        if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{where}: {name} must be true or false, got {raw!r}")
        return value in ("1", "true", "yes", "on")
    try:
        if "int" in str(typ):
            return int(raw)
        if "float" in str(typ):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{where}: {name} must be a number, got {raw!r}") from None
    return raw


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The default of the cache_dir setting: RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else
    ~/.cache/rag, read from `env` (None: the process environment)."""
    env = os.environ if env is None else env
    if env.get("RAG_CACHE_DIR"):
        return Path(env["RAG_CACHE_DIR"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"
