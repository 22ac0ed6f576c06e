"""Settings layering: defaults < rag.toml < RAG_* environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import config
from rag.config import Settings
from rag.errors import ConfigError


def test_defaults_without_file_or_env(tmp_path):
    s = Settings.load(env={})
    # The cache folder's default comes from the environment given (here none): ~/.cache/rag.
    assert s == Settings(cache_dir=Path.home() / ".cache" / "rag")
    assert s.chunk_tokens == config.DEFAULT_CHUNK_TOKENS
    assert s.chunk_overlap == config.DEFAULT_CHUNK_OVERLAP
    assert s.top_k == config.DEFAULT_TOP_K
    assert s.context_tokens == config.DEFAULT_CONTEXT_TOKENS
    assert s.max_answer_tokens == config.DEFAULT_MAX_ANSWER_TOKENS
    assert s.embed_model is None and s.gguf_path is None


def test_autouse_fixture_isolates_the_environment(tmp_path):
    import os

    assert Path.cwd() == tmp_path
    assert {k for k in os.environ if k.startswith("RAG_")} == {"RAG_INDEX_DIR", "RAG_CACHE_DIR", "RAG_EMBED_CACHE"}
    assert Settings.load().index_dir == tmp_path / "index"


def test_layers_in_order(tmp_path):
    (tmp_path / "rag.toml").write_text(
        'top_k = 7\ncontext_tokens = 3000\nmax_answer_tokens = 100\nindex_dir = "from-file"\n'
        'temperature = 0.5\n'
    )
    # rag.toml over defaults
    s = Settings.load(env={})
    assert (s.top_k, s.context_tokens, s.max_answer_tokens, s.index_dir) == (7, 3000, 100, Path("from-file"))
    assert s.temperature == 0.5
    # env over rag.toml
    env = {"RAG_TOP_K": "9", "RAG_INDEX_DIR": "from-env", "RAG_MAX_TOKENS": "50"}
    s = Settings.load(env=env)
    assert (s.top_k, s.context_tokens, s.max_answer_tokens, s.index_dir) == (9, 3000, 50, Path("from-env"))
    # explicit overrides over env; None means "not given"
    s = Settings.load(overrides={"top_k": 11, "index_dir": None, "max_answer_tokens": 60}, env=env)
    assert (s.top_k, s.index_dir, s.max_answer_tokens) == (11, Path("from-env"), 60)


def test_real_environment_is_read(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "3")
    monkeypatch.setenv("RAG_TEMPERATURE", "0.7")
    monkeypatch.setenv("RAG_THREADS", "2")
    monkeypatch.setenv("RAG_MODEL", "/models/x.gguf")
    monkeypatch.setenv("RAG_EMBED_MODEL", "/models/emb")
    s = Settings.load()
    assert s.top_k == 3 and s.temperature == 0.7 and s.threads == 2 and s.n_threads == 2
    assert s.gguf_path == "/models/x.gguf" and s.embed_model == "/models/emb"


def test_empty_env_value_is_ignored():
    assert Settings.load(env={"RAG_TOP_K": ""}).top_k == config.DEFAULT_TOP_K


@pytest.mark.parametrize(
    "name, value",
    [("RAG_TOP_K", "five"), ("RAG_CHUNK_TOKENS", "12.5"), ("RAG_TEMPERATURE", "hot"),
     ("RAG_MAX_TOKENS", "lots"), ("RAG_THREADS", "x"), ("RAG_CONTEXT_TOKENS", "4k")],
)
def test_bad_env_number_names_the_variable(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.load(env={name: value})
    assert name in str(info.value) and repr(value) in str(info.value)


def test_bad_number_in_config_file_names_the_file(tmp_path):
    (tmp_path / "rag.toml").write_text('top_k = "many"\n')
    with pytest.raises(ConfigError, match="rag.toml") as info:
        Settings.load(env={})
    assert "top_k" in str(info.value)


def test_config_file_strings_are_coerced(tmp_path):
    (tmp_path / "rag.toml").write_text('top_k = "4"\n')
    assert Settings.load(env={}).top_k == 4


def test_rag_config_points_at_another_file(tmp_path):
    other = tmp_path / "conf" / "other.toml"
    other.parent.mkdir()
    other.write_text("top_k = 2\n")
    (tmp_path / "rag.toml").write_text("top_k = 8\n")
    assert Settings.load(env={"RAG_CONFIG": str(other)}).top_k == 2
    assert Settings.load(env={}, config_file=other).top_k == 2
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(env={"RAG_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(env={}, config_file=tmp_path / "missing.toml")


def test_broken_or_unknown_config_file(tmp_path):
    (tmp_path / "rag.toml").write_text("top_k = = 3\n")
    with pytest.raises(ConfigError, match="rag.toml"):
        Settings.load(env={})
    (tmp_path / "rag.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        Settings.load(env={})
    with pytest.raises(ConfigError, match="bogus"):
        Settings.load(overrides={"bogus": 1}, env={})


@pytest.mark.parametrize(
    "kw, word",
    [({"chunk_tokens": 8}, "chunk_tokens"), ({"chunk_tokens": 64, "chunk_overlap": 40}, "chunk_overlap"),
     ({"chunk_overlap": -1}, "chunk_overlap"), ({"top_k": 0}, "top_k"),
     ({"max_answer_tokens": 0}, "max_answer_tokens"),
     ({"context_tokens": 100, "max_answer_tokens": 100}, "context_tokens"), ({"batch_size": 0}, "batch_size")],
)
def test_invalid_values_raise_config_error(kw, word):
    with pytest.raises(ConfigError, match=word):
        Settings(**kw)
    with pytest.raises(ConfigError, match=word):
        Settings.load(overrides=kw, env={})


def test_overlap_of_exactly_half_is_allowed():
    assert Settings(chunk_tokens=64, chunk_overlap=32).chunk_overlap == 32


def test_invalid_env_value_is_rejected_after_merging():
    with pytest.raises(ConfigError, match="top_k"):
        Settings.load(env={"RAG_TOP_K": "0"})


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(Exception):
        s.top_k = 3  # type: ignore[misc]


def test_boolean_settings_from_the_environment():
    from rag.config import Settings
    from rag.errors import ConfigError

    assert Settings.load(env={"RAG_FALLBACK": "0"}).fallback is False
    assert Settings.load(env={"RAG_FALLBACK": "yes"}).fallback is True
    with pytest.raises(ConfigError, match="RAG_FALLBACK"):
        Settings.load(env={"RAG_FALLBACK": "maybe"})


def test_generation_backend_settings_and_their_environment_names():
    assert Settings().llm_backend == "llama.cpp" and Settings().base_url is None
    env = {
        "RAG_LLM": "openai", "RAG_BASE_URL": "http://127.0.0.1:8080/v1", "RAG_LLM_MODEL": "qwen2.5:0.5b",
        "RAG_API_KEY": "sk-secret", "RAG_LLM_TIMEOUT": "30",
    }
    s = Settings.load(env=env)
    assert (s.llm_backend, s.base_url, s.server_model, s.api_key, s.llm_timeout) == (
        "openai", "http://127.0.0.1:8080/v1", "qwen2.5:0.5b", "sk-secret", 30.0
    )
    assert "sk-secret" not in repr(s)
    # A flag switches back to llama.cpp even with a server configured in the environment.
    assert Settings.load({"llm_backend": "llama.cpp"}, env=env).llm_backend == "llama.cpp"


@pytest.mark.parametrize("values, message", [
    ({"llm_backend": "openai"}, "--llm openai needs the server's URL"),
    ({"llm_backend": "vllm"}, "must be llama.cpp or openai"),
    ({"llm_backend": "openai", "base_url": "127.0.0.1:8080"}, "must start with http:// or https://"),
    ({"llm_timeout": 0}, "llm_timeout must be positive"),
])
def test_generation_backend_settings_are_checked(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings.load(values, env={})


def test_cache_dir_follows_the_layers(tmp_path):
    home_default = Path.home() / ".cache" / "rag"
    assert Settings.load(env={}).cache_dir == home_default
    assert Settings.load(env={"XDG_CACHE_HOME": "/xdg"}).cache_dir == Path("/xdg/rag")
    (tmp_path / "rag.toml").write_text('cache_dir = "~/from-file"\n')
    assert Settings.load(env={"XDG_CACHE_HOME": "/xdg"}).cache_dir == Path.home() / "from-file"
    env = {"RAG_CACHE_DIR": "/from-env", "XDG_CACHE_HOME": "/xdg"}
    assert Settings.load(env=env).cache_dir == Path("/from-env")
    assert Settings.load({"cache_dir": tmp_path / "flag"}, env=env).cache_dir == tmp_path / "flag"


def test_cache_dir_of_settings_built_directly_is_the_process_default(isolated, rag_cache):
    # conftest points RAG_CACHE_DIR at the session's cache, so nothing lands in ~/.cache.
    assert Settings().cache_dir == rag_cache == Settings.load().cache_dir
