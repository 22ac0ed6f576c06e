"""Process-wide defaults the `rag` command wants and the library must not impose.

The library never sets environment variables or logger levels: a program that imports
`rag` keeps its own Hugging Face, gRPC and logging configuration. The CLI, which owns
its process, calls `quiet_defaults()` once at start-up, before any model or Milvus
library is imported (gRPC reads GRPC_VERBOSITY when it first loads). Every variable is
only defaulted, so a user who sets one (HF_HUB_OFFLINE=0, GRPC_VERBOSITY=debug) wins.
"""

from __future__ import annotations

import logging
import os

# Offline and quiet: models are local directories and never downloaded (the torch adapter
# also loads with local_files_only), and the Hugging Face libraries' progress bars and
# warnings are noise on a command line. Tokenizers' own thread pool is turned off because
# ingest workers fork after the tokenizer has run, and tokenizers then warns on stderr.
# gRPC's C core writes its own warnings (keepalive "too_many_pings" from the milvus-lite
# server during long ingests) to stderr. Ray Data (`ingest --engine ray`) logs each run's
# start and end to the console; a failure still reaches the user as the exception ingest
# turns into its one-line error.
ENV_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "GRPC_VERBOSITY": "NONE",
    "RAY_DATA_LOG_LEVEL": "ERROR",
}

# Loggers whose records the Milvus store turns into RagErrors or that report nothing a user
# can act on: grpc logs each call milvus-lite does not implement (a timestamp call pymilvus
# makes and then does without) as an error with a traceback, and pymilvus logs every
# failed call on its own handler.
QUIET_LOGGERS = ("grpc._server", "pymilvus")


# Parsers that log (or warn about) every oddity of a damaged file on their own: pypdf's
# "Ignoring wrong pointing object", "incorrect startxref", ... A file that cannot be read
# is reported by name and reason anyway; their words go to the log only with -v, never
# into the middle of the progress bars. Python warnings (pypdf's PdfReadWarning, Pillow's
# DecompressionBombWarning) are routed to the log as "py.warnings" for the same reason.
LIBRARY_LOGGERS = ("pypdf", "PIL", "fontTools", "openpyxl", "docx", "pptx", "rapidocr", "RapidOCR", "py.warnings")


def quiet_defaults(verbose: bool = False) -> None:
    """Set the command line's defaults: the variables above where unset, the quiet loggers
    above to CRITICAL, and the parsers' loggers (and Python warnings) to the log at -v
    only. Idempotent."""
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)
