"""What the server's endpoints share: the index follower, the generation queue, the
options, the write jobs of the web page, and the background services that live as
long as the app."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from .follower import IndexFollower
from .jobs import Jobs
from .options import ServeOptions
from .queue import GenerationQueue


class Service(Protocol):
    """Something that runs beside the server for its whole life (a folder watcher, say):
    started after the models are loaded, stopped before the index closes."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class ServerState:
    follower: IndexFollower
    queue: GenerationQueue
    options: ServeOptions
    services: Sequence[Service] = ()
    started: float = field(default_factory=time.time)
    jobs: Jobs = None  # type: ignore[assignment]  # made from the follower when not given

    def __post_init__(self) -> None:
        if self.jobs is None:
            self.jobs = Jobs(self.follower)
