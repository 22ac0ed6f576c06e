"""The command line's contract: the flags of the `rag` commands (one definition of each),
the settings they build, how the help shows them, and the exit codes.

Each flag is a `typing.Annotated` alias (`k: TopK = None`), so a command's signature
reads as its list of flags. Flags several commands share are grouped in frozen
dataclasses (`PlaceFlags`: where the index lives; `AnswerFlags`: what `ask` and `chat`
take); `grouped` puts a group's flags into a command's signature and hands the command
one value of the group. `settings_from` is the one place where flag
names become setting names (`--model` is `gguf_path`, `--extractive` is
`strategy="extractive"`).

Range checks (`-k` at least 1, `--min-score` between 0 and 1) are Typer's own `min`/
`max`, so a bad value is a usage error (exit 2) before any library code runs.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, List, Optional, get_type_hints

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from .config import Settings

# Where the index lives: every command that opens one takes these.
IndexDir = Annotated[Optional[Path], typer.Option(
    "--index-dir", metavar="DIR", help="Index directory (env RAG_INDEX_DIR; default indexes/default).")]
Store = Annotated[Optional[str], typer.Option(
    "--store", metavar="faiss|milvus", help="Where the index lives (env RAG_STORE; default faiss).")]
MilvusUri = Annotated[Optional[str], typer.Option(
    "--milvus-uri", metavar="URI",
    help="Milvus database: a milvus-lite file (*.db) or a server URL (env RAG_MILVUS_URI; default INDEX_DIR/milvus.db).")]
MilvusCollection = Annotated[Optional[str], typer.Option(
    "--milvus-collection", metavar="PREFIX",
    help="Prefix of the index's Milvus collections (env RAG_MILVUS_COLLECTION; default rag).")]
EmbedModel = Annotated[Optional[str], typer.Option(
    "--embed-model", metavar="DIR", help="Local sentence-transformers model directory (env RAG_EMBED_MODEL).")]
EmbedVariant = Annotated[Optional[str], typer.Option(
    "--embed-variant", metavar="fp32|int8", help="The embedder's weights: fp32, or int8 (quantized, faster; "
    "env RAG_EMBED_VARIANT). A new index records it and is searched with it.")]

# Output.
Json = Annotated[bool, typer.Option(
    "--json", help="Print JSON on stdout and nothing else there; an error is {\"error\": {...}}.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log what the library does to stderr.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]

# Retrieval.
TopK = Annotated[Optional[int], typer.Option(
    "-k", "--top-k", metavar="N", min=1, help="Chunks to retrieve (env RAG_TOP_K; default 5).")]
Mode = Annotated[Optional[str], typer.Option(
    "--mode", metavar="dense|lexical|hybrid", help="How chunks are ranked (env RAG_MODE; default hybrid).")]
Where = Annotated[List[str], typer.Option(
    "--where", metavar="FILTER",
    help="Keep hits whose source=GLOB or type=EXT (repeatable; all must hold), e.g. --where type=pdf.")]

# Answering.
Strategy = Annotated[Optional[str], typer.Option(
    "--strategy", metavar="grounded|llm|extractive",
    help="How to answer: grounded (the LLM's answer, plus the source passages it does not say), "
    "llm (the LLM's answer alone) or extractive (source sentences, no LLM) (env RAG_STRATEGY; default grounded).")]
Extractive = Annotated[bool, typer.Option(
    "--extractive", help="The same as --strategy extractive: the best source sentences, no LLM (instant).")]
Model = Annotated[Optional[str], typer.Option(
    "--model", metavar="FILE", help="GGUF model file (env RAG_MODEL; default SmolLM2-135M-Instruct).")]
ContextTokens = Annotated[Optional[int], typer.Option(
    "--context-tokens", metavar="N", min=1,
    help="Prompt + answer token budget, capped at the model's context (env RAG_CONTEXT_TOKENS; default 768).")]
MaxTokens = Annotated[Optional[int], typer.Option(
    "--max-tokens", metavar="N", min=1, help="Longest answer in tokens (env RAG_MAX_TOKENS; default 192).")]
Temperature = Annotated[Optional[float], typer.Option(
    "--temperature", metavar="T", min=0, help="Sampling temperature; 0 is greedy (env RAG_TEMPERATURE; default 0).")]
MinScore = Annotated[Optional[float], typer.Option(
    "--min-score", metavar="0..1", min=0, max=1,
    help="Answer only if the best chunk's similarity reaches this (env RAG_MIN_SCORE; default 0.25).")]
MinCoverage = Annotated[Optional[float], typer.Option(
    "--min-coverage", metavar="0..1", min=0, max=1,
    help="Answer only if a source passage covers this share of the question's words, rarer words "
    "weighing more (env RAG_MIN_COVERAGE; default 0.2).")]
ShowUnsupported = Annotated[Optional[bool], typer.Option(
    "--show-unsupported/--hide-unsupported",
    help="Also print the sentences of the LLM's answer that no source supports, marked NOT SUPPORTED "
    "(env RAG_SHOW_UNSUPPORTED; default hide: the answer holds only what the sources support).")]
Reader = Annotated[Optional[str], typer.Option(
    "--reader", metavar="PATH",
    help="Read the top passages with this reader and answer only when one answers the question: default (the "
    "packaged one), an ONNX export folder, a CrossEncoder or a question-answering model folder (env RAG_READER; "
    "default off).")]
NoReader = Annotated[bool, typer.Option("--no-reader", help="No reader, whatever RAG_READER or rag.toml say.")]
Gate = Annotated[Optional[str], typer.Option(
    "--gate", metavar="default|off|PATH",
    help="Decide whether the passages answer with the calibrated answer gate (default), another gate file, or "
    "off: the separate --min-score and --min-coverage checks (env RAG_GATE; default: default).")]
Rerank = Annotated[Optional[bool], typer.Option(
    "--rerank/--no-rerank", help="Order the top hits by the reader's score, best first (needs a reader; "
    "env RAG_RERANK; default no).")]
Llm = Annotated[Optional[str], typer.Option(
    "--llm", metavar="llama.cpp|openai",
    help="Generation backend: a local GGUF file or an OpenAI-compatible server (env RAG_LLM; default llama.cpp).")]
BaseUrl = Annotated[Optional[str], typer.Option(
    "--base-url", metavar="URL",
    help="The server for --llm openai, e.g. http://127.0.0.1:8080/v1 (env RAG_BASE_URL).")]
LlmModel = Annotated[Optional[str], typer.Option(
    "--llm-model", metavar="NAME", help="Model name to ask the server for (env RAG_LLM_MODEL; default the first it lists).")]

# Ingest.
ChunkTokens = Annotated[Optional[int], typer.Option(
    "--chunk-tokens", metavar="N", min=1, help="Chunk size in embedder tokens (env RAG_CHUNK_TOKENS; default 160).")]
ChunkOverlap = Annotated[Optional[int], typer.Option(
    "--chunk-overlap", metavar="N", min=0, help="Overlap between chunks in tokens (env RAG_CHUNK_OVERLAP; default 32).")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", metavar="N", min=0,
    help="Processes that load and chunk files while the embedder runs (env RAG_WORKERS; default 0).")]
Engine = Annotated[Optional[str], typer.Option(
    "--engine", metavar="local|ray",
    help="Where new and changed files are loaded, chunked and embedded: this machine, or a Ray cluster "
         "(pip install -e '.[ray]') (env RAG_ENGINE; default local).")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", metavar="auto|ray://HOST:PORT",
    help="The Ray cluster for --engine ray: auto (the one this machine is part of), ray://HOST:PORT (a remote "
         "one's client port); not given: a Ray instance on this machine (env RAG_RAY_ADDRESS).")]
Ocr = Annotated[Optional[str], typer.Option(
    "--ocr", metavar="auto|always|never",
    help="Read text from images and scans: auto (only PDF pages without a text layer), always (every PDF page "
         "too), never (env RAG_OCR; default auto).")]

PdfPassword = Annotated[List[str], typer.Option(
    "--pdf-password", metavar="PASSWORD", help="Password to try on encrypted PDFs (repeatable).")]
Rebuild = Annotated[bool, typer.Option("--rebuild", help="Start the index afresh (needed to change embedder or chunking).")]
Include = Annotated[List[str], typer.Option(
    "--include", metavar="GLOB", help="Only files matching this glob (repeatable), e.g. '*.md'.")]
Exclude = Annotated[List[str], typer.Option(
    "--exclude", metavar="GLOB", help="Skip files matching this glob (repeatable), e.g. 'drafts/*'.")]

# Evaluation.
QaFile = Annotated[Optional[Path], typer.Option(
    "--qa", metavar="FILE",
    help="Instead: answer a JSONL question set against the index (question, answers, sources, answerable).")]
Split = Annotated[Optional[str], typer.Option(
    "--split", metavar="NAME", help="The qrels split (default test if there is one, else the only one).")]
EvalIndexDir = Annotated[Optional[Path], typer.Option(
    "--index-dir", metavar="DIR",
    help="Where the corpus index is kept between runs (default indexes/eval-FOLDER); with --qa, "
    "the index to ask (env RAG_INDEX_DIR; default indexes/default).")]

# Exit codes (the README's table); 2 is Typer's own, for bad usage and out-of-range values.
def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"rag {__version__}")
        raise typer.Exit()


def app_options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """The options of `rag` itself, before any command (the app's callback)."""


EXIT_ERROR = 1
EXIT_FILES_FAILED = 3
EXIT_NOT_ANSWERABLE = 4
EXIT_INTERRUPTED = 130

# Flag name -> setting name, where they differ.
_SETTING_OF_FLAG = {
    "k": "top_k", "model": "gguf_path", "llm": "llm_backend", "llm_model": "server_model",
    "max_tokens": "max_answer_tokens",
}


def settings_from(extractive: bool = False, no_reader: bool = False, **flags: Any) -> "Settings":
    """Settings from the command line over rag.toml and RAG_* variables; a flag left out
    (None) falls through to them. `--extractive` is `--strategy extractive` and wins over it;
    `--no-reader` is `reader=""` and wins over `--reader`."""
    from .config import Settings

    overrides = {_SETTING_OF_FLAG.get(name, name): value for name, value in flags.items()}
    if extractive:
        overrides["strategy"] = "extractive"
    if no_reader:
        overrides["reader"] = ""
    if overrides.get("gate") == "off":
        overrides["gate"] = ""
    return Settings.load(overrides)


def _values(group: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(group, f.name) for f in dataclasses.fields(group) if f.name not in leave_out}


@dataclass(frozen=True)
class PlaceFlags:
    """Where the index lives: the flags of every command that opens one."""

    index_dir: IndexDir = None
    store: Store = None
    milvus_uri: MilvusUri = None
    milvus_collection: MilvusCollection = None

    def settings(self, **more: Any) -> "Settings":
        """Settings with these flags and `more` (other flags by name, as settings_from takes them)."""
        return settings_from(**_values(self), **more)


@dataclass(frozen=True)
class AnswerFlags:
    """The flags of `ask` and `chat`: retrieval, the generator and the answer policy."""

    k: TopK = None
    model: Model = None
    llm: Llm = None
    base_url: BaseUrl = None
    llm_model: LlmModel = None
    context_tokens: ContextTokens = None
    max_tokens: MaxTokens = None
    temperature: Temperature = None
    min_score: MinScore = None
    min_coverage: MinCoverage = None
    strategy: Strategy = None
    extractive: Extractive = False
    show_unsupported: ShowUnsupported = None
    reader: Reader = None
    no_reader: NoReader = False
    gate: Gate = None
    rerank: Rerank = None
    mode: Mode = None
    where: Where = field(default_factory=list)
    index_dir: IndexDir = None
    store: Store = None
    milvus_uri: MilvusUri = None
    milvus_collection: MilvusCollection = None
    embed_model: EmbedModel = None

    def settings(self) -> "Settings":
        return settings_from(**_values(self, leave_out=("where",)))


FLAG_GROUPS = (PlaceFlags, AnswerFlags)


def grouped(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` the flags of each flag group it takes (`place: PlaceFlags`,
    `flags: AnswerFlags`) in place of that parameter.

    Typer reads a command's flags from its signature, so the wrapper shows Typer the
    command's signature with each such parameter replaced by one per field of the group,
    and gathers those back into one group value when the command runs.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY  # Typer passes every parameter by name
    hints = get_type_hints(command, include_extras=True)
    groups = {name: hint for name, hint in hints.items() if hint in FLAG_GROUPS}
    params: list[inspect.Parameter] = []
    for p in inspect.signature(command).parameters.values():
        if p.name not in groups:
            params.append(p.replace(kind=keyword, annotation=hints.get(p.name, p.annotation)))
            continue
        field_hints = get_type_hints(groups[p.name], include_extras=True)
        params += [
            inspect.Parameter(f.name, keyword, annotation=field_hints[f.name],
                              default=[] if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(groups[p.name])
        ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        for name, group in groups.items():
            kwargs[name] = group(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(group)})
        return command(**kwargs)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


class Command(TyperCommand):
    """Help that reads as if written by hand: arguments and options by their metavar
    (QUESTION, --top-k N), no Python types (<str>, <list[Path]>) and no <bool> after flags."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                name += "..." if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            if param.hidden if hasattr(param, "hidden") else False:
                continue
            if param.param_type_name == "argument":
                args.append((param.metavar or param.name.upper(), param.help or ""))
            elif param.param_type_name == "option":
                names = " / ".join(", ".join(sorted(opts, key=lambda o: o.startswith("--")))
                                   for opts in (param.opts, param.secondary_opts) if opts)
                value = "" if param.is_flag or param.count else f" {param.metavar or 'VALUE'}"
                opts.append((names + value, param.help or ""))
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
