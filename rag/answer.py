"""The answer policy: pure functions from the evidence to an `Answer`.

Given the question, the retrieved hits, the extract (the source sentences that best
answer it, with coverage and missing names) and, when the LLM ran, its text, decide
between abstaining, quoting the sources (extractive), the LLM's answer (llm), that
answer plus the passages it leaves out (llm+quote), and the quotes instead of an answer
the sources do not support (fallback). Nothing here retrieves, generates or times:
rag/index.py does that and fills in the timings.

The LLM's answer is shown only as far as the sources support it: a sentence they do
not support, one that copies the prompt (its instructions, a source's header or fence)
and one that restates the question are left out of `Answer.text` (a small model writes
all three), and stay in `Answer.sentences`, marked unsupported with a reason, and in
`Answer.draft`. The `show_unsupported` setting keeps them in the text, as written.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from . import answer_checks as checks
from .answer_locate import holds, is_fact_question
from .citations import cited_numbers, citations_for, is_refusal, strip_citations
from .config import Settings
from .prompt import NOT_FOUND, messages
from .text import content_words, sentence_spans, support
from .types import Answer, AnswerSpan, GateScore, Hit, ReaderVerdict, Sentence
from .verify import SUPPORT_THRESHOLD, Extract, located_sentence, render, verify

# Why `ask` declines to answer, in the order abstain_reason checks them; "not_stated": no
# passage holds an answer of the kind asked for (a number, a year, a name: rag/answer_kind.py);
# "not_answered": the reader read the passages and none answers; "model_refused": the LLM
# read the sources and said they lack the answer; "weak_evidence": the answer gate's
# calibrated score (rag/answer_gate.py) is under its threshold.
ABSTAIN_REASONS = ("no_hits", "missing_terms", "far", "not_covered", "not_stated", "not_answered", "model_refused",
                   "weak_evidence")


def abstain_reason(
    hits: Sequence[Hit], quotes: Extract, settings: Settings, reader: ReaderVerdict | None = None,
    located: AnswerSpan | None = None, gate: GateScore | None = None,
) -> str:
    """Why the documents cannot answer, or "" when they may: nothing was retrieved, a name
    or number of the question is in no source (asked about Mistral, the sources speak of
    Llama), nothing is close enough to the question, no passage covers what it asks, or
    none holds the kind of answer it asks for (how many parameters: no number of them);
    with a reader, whether it found a passage that answers. Then `ask` says so without
    asking the LLM."""
    if not hits:
        return "no_hits"
    if reader is not None:
        return _read_reason(quotes, settings, reader)
    if settings.check_terms and quotes.missing:
        return "missing_terms"
    if gate is not None:  # one calibrated score replaces the floor and the coverage threshold
        if settings.check_answer_kind and not quotes.stated:
            return "not_stated"
        if gate.probability < gate.threshold:
            return "weak_evidence"
        return "" if quotes.sentences else "not_covered"
    defined = located is not None and located.how in ("expansion", "definition")
    # A passage that defines the term asked about is evidence no cosine floor can veto:
    # "reinforcement learning from human feedback (RLHF)" is far from "What does RLHF stand for?"
    if not defined and max(h.similarity or 0.0 for h in hits) < settings.min_score:
        return "far"
    if not quotes.sentences or (not defined and quotes.coverage < settings.min_coverage):
        return "not_covered"
    if settings.check_answer_kind and not quotes.stated:
        return "not_stated"
    return ""


def _read_reason(quotes: Extract, settings: Settings, reader: ReaderVerdict) -> str:
    """With a reader, its verdict replaces the similarity floor and the coverage threshold;
    the names-and-numbers check stays (measured: see the README, "Reading the passages")."""
    if settings.check_terms and quotes.missing:
        return "missing_terms"
    if settings.check_answer_kind and not quotes.stated:
        return "not_stated"
    if reader.score < reader.threshold:
        return "not_answered"
    if not quotes.sentences:  # nothing to quote or to check an answer against
        return "not_covered"
    return ""


def abstained(
    question: str, hits: Sequence[Hit], quotes: Extract, models: dict[str, str], reason: str = ""
) -> Answer:
    """The refusal, with the closest chunks to look at."""
    return Answer(question, NOT_FOUND, False, (), (), tuple(hits), models, {}, strategy="abstain",
                  coverage=quotes.coverage, missing=quotes.missing,
                  abstain_reason=reason)


def quoted(question: str, hits: Sequence[Hit], quotes: Extract, models: dict[str, str]) -> Answer:
    """The extractive answer: the best-matching source sentences, cited."""
    text = render(quotes.sentences)
    return Answer(
        question=question, text=text, answerable=True, citations=citations_for(text, quotes.sentences, hits),
        sources=tuple(hits), hits=tuple(hits), models=models, timings_ms={}, sentences=quotes.sentences,
        strategy="extractive", coverage=quotes.coverage, missing=quotes.missing,
    )


def generated(
    question: str, text: str, sources: Sequence[Hit], hits: Sequence[Hit], quotes: Extract,
    models: dict[str, str], settings: Settings, located: AnswerSpan | None = None,
) -> Answer:
    """The answer to give once the LLM wrote `text` from the prompt's `sources`.

    Every sentence is checked (`checked_sentences`); the answer keeps the supported ones,
    as the LLM wrote them, or all of them with the `show_unsupported` setting. When none
    is supported the answer is the extractive one ("fallback") if the settings allow,
    else the LLM's text unchanged. The "grounded" strategy adds the passages the answer
    leaves out. The LLM's whole text is kept as the draft.
    """
    checked = checked_sentences(question, body := _fences_apart(text), sources)
    common = dict(question=question, sources=tuple(sources), hits=tuple(hits), models=models, timings_ms={},
                  draft=text, coverage=quotes.coverage, missing=quotes.missing)
    if is_refusal(text):  # said in the policy's words, citing nothing; the model's are the draft
        return Answer(text=NOT_FOUND, answerable=False, citations=(), sentences=checked, strategy="abstain",
                      abstain_reason="model_refused", **common)
    kept = tuple(s for s in checked if s.supported)
    if settings.fallback and not kept:
        fallback = quoted(question, hits, quotes, models)
        return replace(fallback, strategy="fallback", draft=text,
                       sentences=(*_renumbered(checked, sources, hits), *fallback.sentences))
    whole = settings.show_unsupported or not kept
    shown, said = (text, checked) if whole else (supported_text(body, checked), kept)
    strategy, everything = "llm", checked
    lead = _leading_quote(question, kept, located, sources) if not whole else None
    if lead is not None:  # a fact question whose answer does not carry the located span
        shown, said, everything, strategy = (f"{render([lead])} {shown}", (lead, *said), (lead, *checked),
                                             "llm+quote")
    if settings.strategy == "grounded":
        grounded = add_source_passages(shown, everything, quotes, hits, sources)
        if grounded is not None:
            before = len(everything)
            (shown, everything), strategy = grounded, "llm+quote"
            said = (*said, *everything[before:])
    return Answer(text=shown, answerable=True, citations=citations_for(shown, said, sources),
                  sentences=everything, strategy=strategy, **common)


def _leading_quote(
    question: str, kept: Sequence[Sentence], located: AnswerSpan | None, sources: Sequence[Hit]
) -> Sentence | None:
    """The located sentence, cited, to lead an answer to a fact question (a term, a name,
    a number, a meaning: rag/answer_kind.py, rag/definitions.py) whose first kept sentence
    does not carry the located span; None when it does, or nothing was located."""
    if located is None or not kept or not is_fact_question(question) or holds(located, kept[0].text):
        return None
    return located_sentence(located, sources)


# Marks of the prompt copied into an answer: the user message's labels ("Question:",
# "Sources:"), a source's header ("Source 4 (notes.txt):") and the fences around it.
_ECHO = re.compile(r"^\W*(question|sources)\s*:|\bsource\s+\d+\s*\([^)]*\)\s*:|<<<|>>>", re.I)
# The words of the fixed prompt (the rules and the user message around the sources): a
# sentence made of little else repeats the instructions ("Answer in one to three
# sentences, citing sources like [1].").
_PROMPT_WORDS = frozenset(content_words(" ".join(m["content"] for m in messages("", []))))
# Words that frame a restatement ("The answer to the question ... is") without adding to it.
_FRAME_WORDS = frozenset({"question", "answer"})
# A question opening with one of these is answered yes or no, often by restating it.
_AUXILIARY = frozenset(
    "is are was were am do does did can could will would shall should may might must has have had".split())


def is_echo(sentence: str) -> bool:
    """Whether an answer sentence copies the prompt instead of answering: its labels, a
    source's header or fence, or mostly the words of its instructions."""
    if _ECHO.search(sentence):
        return True
    said = content_words(sentence)
    return len(said) >= 3 and len(said & _PROMPT_WORDS) >= 0.8 * len(said)


def restates(question: str, sentence: str) -> bool:
    """Whether an answer sentence only asks or repeats the question: it is itself a
    question, or it adds no content word to the question's (except to a yes/no question,
    which a restatement answers: "Is FAISS a library?" "FAISS is a library.")."""
    if sentence.rstrip().endswith("?"):
        return True
    asked = content_words(question)
    first = question.split()[0].lower() if question.split() else ""
    return bool(asked) and first not in _AUXILIARY and not content_words(sentence) - asked - _FRAME_WORDS


def checked_sentences(question: str, text: str, sources: Sequence[Hit]) -> tuple[Sentence, ...]:
    """The answer's sentences, verified against their sources (rag/verify.py); those that
    echo the prompt or restate the question are unsupported whatever their words, and
    every unsupported one says why (`Sentence.reason`)."""
    verified = verify(text, sources)
    # verify() judges each sentence with content words, in order: their spans, to find
    # the ones inside a source block the model copied ("Source 2 (a.md):\n<<<\n...\n>>>").
    spans = [(a, b) for a, b in sentence_spans(text) if content_words(strip_citations(text[a:b]))]
    copied = [m.span() for m in _COPIED.finditer(text)]
    out = []
    said = [s.text for s in verified]
    for i, s in enumerate(verified):
        a, b = spans[i] if len(spans) == len(verified) else (0, 0)
        inside = any(a < end and b > start for start, end in copied)
        reason = ("echo" if inside or is_echo(s.text) else "question" if restates(question, s.text)
                  else "" if s.supported else s.reason or "unsupported")
        reason = reason or _misread(s, said[i + 1:], [x.text for x in out if x.supported])
        out.append(replace(s, supported=not reason, reason=reason))
    # A list announced and then left out with its items ("for three reasons:" and no kept
    # reason) announces what the answer no longer gives: judged again on the kept sentences.
    for i, s in enumerate(out):
        later = [x.text for x in out[i + 1:] if x.supported]
        if s.supported and checks.announces(s.text, later):
            out[i] = replace(s, supported=False, reason="announces")
    return tuple(out)


def _misread(sentence: Sentence, following: Sequence[str], kept: Sequence[str]) -> str:
    """Why a sentence its sources share words with still says something they do not
    (rag/answer_checks.py), or ""."""
    return (checks.repeated_words(sentence.text) or checks.announces(sentence.text, following)
            or checks.repeats(sentence.text, kept)
            or next((r for q in sentence.quotes if (r := checks.misrelates(sentence.text, q.text))), ""))


_COPIED = re.compile(r"(?:\bsource\s+\d+\s*\([^)\n]*\)\s*:\s*)?<<<.*?(?:>>>|\Z)", re.I | re.S)


def _fences_apart(text: str) -> str:
    """The text with each line that is a source fence (`<<<`, `>>>`) set apart by blank
    lines, so a fence copied from the prompt is not judged as part of the next sentence."""
    return _FENCE_LINE.sub(lambda m: f"\n\n{m.group(1)}\n\n", text).strip()


_FENCE_LINE = re.compile(r"^[ \t]*(<<<|>>>)[ \t]*$", re.M)


def supported_text(text: str, checked: Sequence[Sentence]) -> str:
    """The answer with only its supported sentences, as the LLM wrote them (citations in
    place, a line break kept where it had one); a bare "[1]." stays with the sentence before it."""
    good = {s.text for s in checked if s.supported}
    spans = sentence_spans(text)
    out, last = "", -1
    for i, (a, b) in enumerate(spans):
        bare = strip_citations(text[a:b])
        keep = bare in good or (not content_words(bare) and cited_numbers(text[a:b]) and last == i - 1)
        if keep:
            gap = text[spans[i - 1][1]:a] if i else ""
            out += ("\n" if "\n" in gap else " ") + text[a:b] if out else text[a:b]
            last = i
    return out


def _renumbered(checked: Sequence[Sentence], sources: Sequence[Hit], hits: Sequence[Hit]) -> tuple[Sentence, ...]:
    """Sentences citing the prompt's sources renumbered to their place among `hits` (the
    sources of a fallback answer)."""
    place = {h.chunk_id: n for n, h in enumerate(hits, start=1)}
    number = {n: place[h.chunk_id] for n, h in enumerate(sources, start=1) if h.chunk_id in place}
    return tuple(replace(s, citations=tuple(number[n] for n in s.citations if n in number),
                         quotes=tuple(replace(q, id=number[q.id]) for q in s.quotes if q.id in number))
                 for s in checked)


def add_source_passages(
    text: str, checked: Sequence[Sentence], quotes: Extract, hits: Sequence[Hit], sources: Sequence[Hit]
) -> tuple[str, tuple[Sentence, ...]] | None:
    """The "grounded" strategy: the answer with the best source passages (the extractive
    answer's) added after it, renumbered to their place in the prompt, and its sentences
    with the passages'; None when the answer already says what every passage says or no
    passage was in the prompt."""
    added = []
    for best in quotes.sentences:
        hit = hits[best.citations[0] - 1]
        numbers = [n for n, h in enumerate(sources, start=1) if h.chunk_id == hit.chunk_id]
        if not numbers or support(best.text, text) >= SUPPORT_THRESHOLD:
            continue
        n = numbers[0]
        added.append(replace(best, citations=(n,), quotes=tuple(replace(q, id=n) for q in best.quotes)))
    if not added:
        return None
    return f"{text}\n\nFrom the sources: {render(added)}", (*checked, *added)
