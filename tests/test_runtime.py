"""The command line's process defaults (rag/runtime.py): set only where the user has not,
and never by the library itself."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Iterator

import pytest

from rag.runtime import ENV_DEFAULTS, QUIET_LOGGERS, quiet_defaults

RAG = Path(__file__).resolve().parents[1] / "rag"


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


def _side_effects(tree: ast.AST) -> list[str]:
    """Calls and assignments that change the process environment or a logger's level."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if node.func.attr == "setLevel" or node.func.attr == "putenv" or (
                owner == "os.environ" and node.func.attr in ("setdefault", "update", "pop")
            ):
                found.append(ast.unparse(node))
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [ast.unparse(t) for t in targets if ast.unparse(t).startswith("os.environ[")]
    return found


def test_only_the_runtime_module_sets_environment_or_logger_levels():
    offenders = {
        str(path.relative_to(RAG.parent)): calls
        for path in sorted(RAG.rglob("*.py"))
        if path.name != "runtime.py" and path.name != "cli.py"
        if (calls := _side_effects(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}
