"""The answer gate (rag/answer_gate.py): the packaged file, its features and its place in
the answer policy."""

from __future__ import annotations

import json

import pytest

from rag import answer as policy
from rag.answer_gate import FEATURES, PACKAGED, Evidence, Gate, features, load_gate, rare_terms
from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.types import AnswerSpan, GateScore, Hit, Reading
from rag.verify import extract

TEXT = "Models are aligned with reinforcement learning from human feedback (RLHF). It needs a reward model."


def _evidence(question: str, similarity: float) -> Evidence:
    hit = Hit(1, 1.0, 7, "rlhf.md", None, "", 0, len(TEXT), TEXT, similarity=similarity)
    span = AnswerSpan("reinforcement learning from human feedback", "rlhf.md", None, 24, 66, 2.0, TEXT[:74], 0, 74,
                      7, "expansion")
    reading = Reading(1.5, ((24, 66, 7.0),))
    return Evidence(question, (hit,), (hit,), (reading,), None, span, extract(question, [hit], located=span),
                    {"rlhf": 4.0, "stand": 1.0})


def test_the_packaged_gate_says_what_it_was_fitted_on_and_uses_every_feature():
    data = json.loads(PACKAGED.read_text(encoding="utf-8"))
    assert set(data["weights"]) == set(FEATURES) and 0 < data["threshold"] < 1
    assert data["fitted_on"] and all(k.endswith("/fit") for k in data["fitted_on"])
    assert {"squad/check", "corpus/check"} <= set(data["figures"])  # reported on questions it did not see
    gate = load_gate()
    assert gate.name == "packaged" and gate.threshold == data["threshold"]


def test_a_missing_gate_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="cannot read the answer gate"):
        load_gate(tmp_path / "nope.json")


def test_features_are_plain_numbers_from_the_evidence():
    values = features(_evidence("What does RLHF stand for?", 0.19))
    assert list(values) == list(FEATURES) and all(isinstance(v, float) for v in values.values())
    assert values["defined"] == 1.0 and values["reader"] == 1.5 and values["similarity"] == pytest.approx(0.19)
    assert values["rare_terms"] == 1.0  # the rare term of the question is in the passage verbatim


def test_rare_terms_counts_the_rarer_words_found_verbatim():
    idf = {"rlhf": 5.0, "reward": 3.0, "stand": 0.5}
    assert rare_terms("What does RLHF stand for?", idf, TEXT) == 1.0
    idf = {"reward": 3.0, "model": 1.0, "ppo": 5.0, "need": 0.5}  # the rarer half: reward and PPO
    assert rare_terms("What reward model does PPO need?", idf, TEXT) == pytest.approx(3 / 8)


def test_the_gate_refuses_under_its_threshold_and_answers_over_it():
    ev = _evidence("What does RLHF stand for?", 0.19)
    s = Settings()
    low, high = GateScore(0.2, 0.5), GateScore(0.8, 0.5)
    assert policy.abstain_reason(ev.hits, ev.quotes, s, None, ev.located, low) == "weak_evidence"
    assert policy.abstain_reason(ev.hits, ev.quotes, s, None, ev.located, high) == ""
    # with the gate off, the cosine floor alone does not veto a definition found verbatim
    assert policy.abstain_reason(ev.hits, ev.quotes, s, None, ev.located, None) == ""
    gate = Gate({"similarity": 10.0}, -5.0, 0.5)
    assert gate.probability({"similarity": 0.2}) < 0.5 < gate.probability({"similarity": 0.8})


def test_the_gate_is_off_by_setting_and_by_environment(tmp_path):
    from fakes import HashEmbedder, make_folder, settings

    from rag import Index, ingest

    s = settings(tmp_path)
    ingest([make_folder(tmp_path / "docs")], settings=s, embedder=HashEmbedder())
    for value in ("off", ""):
        index = Index.open(settings=s._merged({"gate": value}), embedder=HashEmbedder())
        assert index.gate is None and index.ask("Why do cats purr?", extractive=True).gate is None
    on = Index.open(settings=s, embedder=HashEmbedder()).ask("Why do cats purr?", extractive=True)
    assert on.gate is not None and on.answer_span is not None


def test_a_leading_quote_stays_in_the_sentences_with_the_grounded_passages():
    text = "Reinforcement learning from human feedback (RLHF) tunes a model. It needs a reward model."
    hit = Hit(1, 1.0, 3, "rlhf.md", None, "", 0, len(text), text, similarity=0.6)
    span = AnswerSpan("Reinforcement learning from human feedback", "rlhf.md", None, 0, 42, 2.0, text[:65], 0, 65, 3,
                      "expansion")
    quotes = extract("What does RLHF stand for?", [hit], located=span)
    answer = policy.generated("What does RLHF stand for?", "It needs a reward model [1].", [hit], [hit], quotes,
                              {}, Settings(strategy="grounded"), span)
    assert answer.strategy == "llm+quote" and answer.text.startswith(text[:65])
    assert answer.sentences[0].text == text[:65]
