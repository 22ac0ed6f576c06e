"""A chat over the index: follow-up questions rewritten to stand alone, and the turns so far.

The rewrite is a fixed word rule, not an LLM call: the default LLM (135M parameters)
rewrites slowly and often changes the question's meaning, while retrieval only needs the
topic words back. The rule errs towards leaving a question alone, because topic words
appended to a question that did not need them pull in sources of the old topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from .citations import strip_citations
from .text import content_words, words

if TYPE_CHECKING:
    from .index import Index
    from .types import Answer, Where

_POINTERS = frozenset(
    "it its it's itself they them their theirs they're these those he she him his her this that that's".split()
)
_OPENERS = (("and",), ("or",), ("but",), ("also",), ("so",), ("then",), ("what", "about"), ("how", "about"),
            ("what", "else"))
# Chat words that say nothing about the topic: "Tell me more", "Explain that, please".
_FILLER = frozenset(
    "tell me more explain elaborate mean means meant please about else again further detail details example "
    "examples give show say said exactly really ok okay thanks thank yes i my us one ones "
    "compare describe summarize summarise define "
    # stop words ending in "s": content_words strips the "s" before its stop-list check
    "does doesn't this has hasn't was wasn't is isn't his hers its yours ours whose always".split()
)
MAX_TOPIC_WORDS = 8  # enough for a topic; more would drown the follow-up's own words
MAX_TURNS = 8
_BEFORE_PUNCT = re.compile(r"\s+(?=[.,;:!?])")


def _plain(answer: str) -> str:
    """The answer without [n] markers or the space they leave before punctuation."""
    return _BEFORE_PUNCT.sub("", strip_citations(answer))


def _topic(word: str) -> str:
    """The word's normal form if it names something ("" for stop and filler words)."""
    if word in _FILLER:
        return ""
    found = content_words(word)
    return next(iter(found)) if len(found) == 1 else ""


def leans_on_previous(question: str) -> bool:
    """Whether a question needs the previous turn to be understood (see standalone_query)."""
    said = words(question, decimals=False)
    if any(tuple(said[: len(o)]) == o for o in _OPENERS):
        return True
    if said and said[-1] in _POINTERS:
        return True  # "Why do tokenizers use it?": a pronoun at the end is an object from before
    for word in said:
        if _topic(word):
            return False  # a content word before any pronoun: probably what the pronoun means
        if word in _POINTERS:
            return True
    return True  # not one content word of its own


def _rewrite(question: str, previous: str) -> str:
    if not previous or not leans_on_previous(question):
        return question
    own = {_topic(w) for w in words(question, decimals=False)}
    added: list[str] = []
    for word in words(previous, decimals=False):
        norm = _topic(word)
        if norm and norm not in own and word not in added:
            own.add(norm)
            added.append(word)
    added = added[:MAX_TOPIC_WORDS]
    return f"{question.strip()} {' '.join(added)}" if added else question


def standalone_query(followup: str, history: Sequence[tuple[str, str]]) -> str:
    """What to retrieve with for a follow-up question: the question itself, or the question
    with the previous question's topic words appended.

    The follow-up leans on the previous turn when it
      - opens with "and", "or", "but", "also", "so", "then", "what about", "how about" or
        "what else";
      - has a pronoun (it, its, they, them, their, these, those, this, that, he, she, ...)
        before any content word: "Why is that?" and "Does it use much memory?" point back,
        while in "How does BPE build its vocabulary?" and "the cache that grows" the word
        before the pronoun is what it refers to;
      - ends with a pronoun: "Why do tokenizers use it?", "Compare them";
      - or has no content word at all once chat filler is ignored ("Why?", "Tell me more").
    Then the content words of the previous question's own standalone query that the
    follow-up lacks are appended, in their order, at most MAX_TOPIC_WORDS of them; working
    from the rewritten previous query keeps the topic through a chain of follow-ups.
    Otherwise, and on the first turn, the follow-up is returned unchanged.

    Answers are not used: they can be wrong or refusals, while the question's words are
    the ones that found the sources the user is asking about.

    Args:
        history: earlier (question, answer) turns, oldest first.
    """
    previous = ""
    for question, _ in history:
        previous = _rewrite(question, previous)
    return _rewrite(followup, previous)


@dataclass(frozen=True)
class Turn:
    question: str
    query: str  # what retrieval used
    answer: str  # the answer text without [n] markers
    answered: bool


class ChatSession:
    """A conversation with an Index: each question sees the turns before it.

    Every turn's question steers the rewrite of the next follow-up, but only answered
    turns go into the prompt as history: a refusal adds no facts and teaches a small
    model to refuse again. Answers are kept without their [n] markers, because the
    numbers refer to that turn's sources, not to the ones the next prompt numbers.
    The newest MAX_TURNS turns are kept; the prompt builder drops what does not fit.
    """

    def __init__(self, index: "Index", where: "Where | None" = None, max_turns: int = MAX_TURNS) -> None:
        self.index = index
        self.where = where
        self.max_turns = max_turns
        self.turns: list[Turn] = []
        self.last: Answer | None = None
        self.last_query: str | None = None

    @property
    def history(self) -> list[tuple[str, str]]:
        """The answered (question, answer) turns, oldest first: what the prompt gets."""
        return [(t.question, t.answer) for t in self.turns if t.answered]

    def query_for(self, text: str) -> str:
        """What retrieval will use for this question, given the turns so far."""
        return standalone_query(text, [(t.question, t.answer) for t in self.turns])

    def ask(
        self, text: str, on_token: Callable[[str], None] | None = None, extractive: bool = False,
        on_draft: Callable[[str], None] | None = None,
    ) -> "Answer":
        """Answer a question or follow-up and remember the turn (`on_token`, `on_draft`: as Index.ask).

        Raises:
            RagError: as Index.ask; the session is left as it was.
        """
        query = self.query_for(text)
        answer = self.index.ask(
            text, on_token=on_token, where=self.where, extractive=extractive, history=self.history,
            query=query if query != text else None, on_draft=on_draft,
        )
        self.turns = [*self.turns, Turn(text, query, _plain(answer.text), answer.answerable)]
        self.turns = self.turns[-self.max_turns:]
        self.last, self.last_query = answer, query
        return answer

    def remember(self, question: str, answer: str, answered: bool = True) -> None:
        """Add a turn answered elsewhere: a chat client (rag serve's chat completions) sends
        the whole conversation with each request, and the session is rebuilt from it."""
        turn = Turn(question, self.query_for(question), _plain(answer), answered)
        self.turns = [*self.turns, turn][-self.max_turns:]

    def clear(self) -> None:
        """Forget the conversation; the next question is a first turn."""
        self.turns, self.last, self.last_query = [], None, None
