"""The command line's process defaults (rag/runtime.py): set only where the user has not.
(That no other library module sets any is checked in tests/test_structure.py.)"""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from rag.runtime import ENV_DEFAULTS, QUIET_LOGGERS, quiet_defaults


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_quiet_defaults_fill_unset_variables_and_keep_the_users(clean, monkeypatch: pytest.MonkeyPatch):
    import os

    monkeypatch.setenv("GRPC_VERBOSITY", "debug")
    quiet_defaults()
    assert os.environ["GRPC_VERBOSITY"] == "debug"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert all(logging.getLogger(n).level == logging.CRITICAL for n in QUIET_LOGGERS)
