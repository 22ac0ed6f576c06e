"""The names users give settings keep working after the internal renames: `llm_model`
(a GGUF file) is now `gguf_path` and `llm_model_name` (a name a server knows) is now
`server_model`; flags, environment variables, rag.toml keys and Settings.load keys
are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.cli_options import settings_from
from rag.config import Settings


def test_flags_set_the_renamed_settings():
    s = settings_from(model="m.gguf", llm_model="served", llm="openai", base_url="http://127.0.0.1:1/v1")
    assert (s.gguf_path, s.server_model, s.llm_backend) == ("m.gguf", "served", "openai")


def test_environment_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAG_MODEL", "/models/x.gguf")
    monkeypatch.setenv("RAG_LLM_MODEL", "served")
    s = Settings.load()
    assert (s.gguf_path, s.server_model) == ("/models/x.gguf", "served")
    assert settings_from(model="flag.gguf").gguf_path == "flag.gguf", "a flag beats the environment"


@pytest.mark.parametrize("keys", [("llm_model", "llm_model_name"), ("gguf_path", "server_model")])
def test_rag_toml_takes_the_earlier_and_the_new_names(tmp_path: Path, keys: tuple[str, str]):
    (tmp_path / "rag.toml").write_text(f'{keys[0]} = "/models/t.gguf"\n{keys[1]} = "served"\n')
    s = Settings.load()  # the autouse fixture runs each test in tmp_path
    assert (s.gguf_path, s.server_model) == ("/models/t.gguf", "served")


def test_environment_beats_an_earlier_name_in_rag_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "rag.toml").write_text('llm_model = "/models/toml.gguf"\n')
    monkeypatch.setenv("RAG_MODEL", "/models/env.gguf")
    assert Settings.load().gguf_path == "/models/env.gguf"


def test_settings_load_takes_the_earlier_names():
    s = Settings.load({"llm_model": "/m.gguf", "llm_model_name": "served"})
    assert (s.gguf_path, s.server_model) == ("/m.gguf", "served")


def test_the_earlier_setting_names_still_read():
    from rag.config import Settings

    s = Settings.load({"llm_model": "m.gguf", "llm_model_name": "served"}, env={})
    assert (s.gguf_path, s.llm_model, s.server_model, s.llm_model_name) == ("m.gguf", "m.gguf", "served", "served")
