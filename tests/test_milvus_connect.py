"""Opening a Milvus client (rag/stores/milvus_connect.py): a milvus-lite file gets a longer
connect limit and a second try when the in-process server is slow to answer; anything
else fails at once with a message that says what to do. A fake pymilvus stands in, so
these run in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pymilvus")

from pymilvus import MilvusException, Status  # noqa: E402

from rag.errors import IndexLockedError, RagError  # noqa: E402
from rag.stores import milvus_connect  # noqa: E402


class FakePymilvus:
    """A module whose MilvusClient raises the given errors in turn, then connects."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    def MilvusClient(self, **kwargs: Any) -> str:  # noqa: N802 (pymilvus's name)
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return "client"


def slow() -> MilvusException:
    # What pymilvus raises when the Connect call gets no answer within its timeout.
    return MilvusException(
        code=Status.CONNECT_FAILED,
        message="Fail connecting to server on 127.0.0.1:40000, illegal connection params or server unavailable",
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    def install(*errors: Exception) -> FakePymilvus:
        module = FakePymilvus(*errors)
        monkeypatch.setattr(milvus_connect, "pymilvus", lambda: module)
        return module

    return install


def test_a_slow_milvus_lite_start_is_tried_again_with_the_longer_limit(fake):
    module = fake(slow())
    assert milvus_connect.client("/idx/milvus.db", None) == "client"
    assert [c["timeout"] for c in module.calls] == [milvus_connect.LITE_CONNECT_TIMEOUT] * 2
    assert milvus_connect.LITE_CONNECT_TIMEOUT > 10  # pymilvus's own limit


def test_milvus_lite_that_never_answers_says_so(fake):
    module = fake(*[slow()] * milvus_connect.LITE_CONNECT_ATTEMPTS)
    with pytest.raises(RagError, match=r"milvus-lite did not answer for /idx/milvus.db within 60 s, 2 times"):
        milvus_connect.client("/idx/milvus.db", None)
    assert len(module.calls) == milvus_connect.LITE_CONNECT_ATTEMPTS


def test_a_server_keeps_pymilvus_limits_and_fails_at_once(fake):
    module = fake(slow())
    with pytest.raises(RagError, match="cannot open Milvus at http://db:19530: .*Fail connecting"):
        milvus_connect.client("http://db:19530", "tok")
    assert module.calls == [{"uri": "http://db:19530", "token": "tok", "timeout": None}]


def test_a_locked_milvus_lite_file_is_not_retried(fake):
    module = fake(MilvusException(message="Open local milvus failed"))
    with pytest.raises(IndexLockedError, match="open in another process"):
        milvus_connect.client("/idx/milvus.db", None)
    assert len(module.calls) == 1
