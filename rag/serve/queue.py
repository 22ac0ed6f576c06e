"""Generation behind one model instance: a single worker thread takes jobs in arrival
order, a bounded number wait, and any job can be cancelled.

A job is a function of a `threading.Event`; it checks the event between tokens (the
`on_draft` callback of Index.ask raises `Cancelled` once it is set), so cancelling a
running job stops llama.cpp at its next token and frees the model for the next one.
A job not started yet is dropped from the queue.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """The job's client went away (or the server is stopping): stop generating."""


class Closed(Exception):
    """The server is shutting down: no new jobs, and the running ones are stopped."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down; the answer was not written (retry on its restart)")


class Busy(Exception):
    """The queue is full; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int, waiting: int) -> None:
        super().__init__(
            f"the server is busy writing other answers ({waiting} in the queue); retry after {retry_after} s"
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Ticket(Generic[T]):
    """A submitted job: its result to await, and the event that cancels it."""

    future: "Future[T]"
    cancel_event: threading.Event

    def cancel(self) -> None:
        self.cancel_event.set()
        self.future.cancel()  # only succeeds while it waits; a running job sees the event


def check(cancel: threading.Event) -> Callable[[str], None]:
    """An `on_draft` callback that stops generation once `cancel` is set."""

    def on_piece(_: str) -> None:
        if cancel.is_set():
            raise Cancelled()

    return on_piece


class GenerationQueue:
    """One worker, `size` waiting places; `submit` past them raises Busy.

    Args:
        size: jobs that may wait while one runs (0: one at a time, nothing waits).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-generate")
        self._lock = threading.Lock()
        self._tickets: set[Ticket[Any]] = set()
        self._seconds: deque[float] = deque([8.0], maxlen=16)  # recent job times, for Retry-After
        self._closed = False

    @property
    def depth(self) -> int:
        """Jobs admitted and not finished: the running one and those waiting."""
        with self._lock:
            return len(self._tickets)

    def retry_after(self, ahead: int) -> int:
        """Seconds until a place is likely free: the mean recent job time per job ahead."""
        mean = sum(self._seconds) / len(self._seconds)
        return max(1, math.ceil(mean * max(1, ahead - self.size)))

    def submit(self, job: Callable[[threading.Event], T]) -> Ticket[T]:
        """Queue `job`; it runs on the worker thread with its cancel event.

        Raises:
            Busy: `size` jobs already wait behind a running one (or the queue is closed).
        """
        cancel = threading.Event()

        def run() -> T:
            if cancel.is_set():
                raise Cancelled()
            started = time.monotonic()
            try:
                return job(cancel)
            finally:
                self._seconds.append(time.monotonic() - started)

        with self._lock:
            ahead = len(self._tickets)
            if self._closed:
                raise Closed()
            if ahead > self.size:
                raise Busy(self.retry_after(ahead), ahead)
            ticket = Ticket(self._executor.submit(run), cancel)
            self._tickets.add(ticket)
        ticket.future.add_done_callback(lambda _: self._forget(ticket))
        return ticket

    def _forget(self, ticket: Ticket[Any]) -> None:
        with self._lock:
            self._tickets.discard(ticket)

    @property
    def closing(self) -> bool:
        return self._closed

    def stop(self, grace: float) -> None:
        """Shutting down: refuse new jobs now, and cancel the ones left after `grace`
        seconds, so answers being written can finish and the rest end cleanly.

        Never from a signal handler: it takes the lock that `submit` holds on the event
        loop's thread (server.py calls it as the shutdown starts instead)."""
        with self._lock:
            self._closed = True
        timer = threading.Timer(grace, self.cancel_all)
        timer.daemon = True
        timer.start()

    def cancel_all(self) -> None:
        with self._lock:
            tickets = list(self._tickets)
        for ticket in tickets:
            ticket.cancel()

    def close(self, wait: bool = True) -> None:
        """Cancel every job, running or waiting, and stop the worker (after the running
        job reaches its next token, when `wait`)."""
        with self._lock:
            self._closed = True
        self.cancel_all()
        self._executor.shutdown(wait=wait, cancel_futures=True)
