"""Running the app: bind the socket, hand it to uvicorn, return when it has shut down.

The socket is bound here rather than by uvicorn so that the address (and the port the
OS chose for --port 0) is known, and reported, before the first request can arrive.
uvicorn handles SIGINT and SIGTERM: it stops accepting, lets requests in flight finish
(up to `graceful_seconds`, then cancels them, which stops their generation) and runs
the app's shutdown, which closes the queue and the index. Requests write nothing to
the index (they open it read-only) but the web page's ingest, re-sync and remove jobs
(jobs.py; refused with --read-only), which commit as `rag ingest` does, as does the
watcher of `rag serve --watch`; the shutdown waits for a job that is running.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, Callable

from .options import ServeOptions

if TYPE_CHECKING:
    from .queue import GenerationQueue


def bind(options: ServeOptions) -> socket.socket:
    """A listening socket on the options' host and port.

    Raises:
        OSError: the address is taken or cannot be bound.
    """
    host = options.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, options.port), family=family, backlog=128)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(app: Any, options: ServeOptions, on_listening: Callable[[str], None] | None = None,
        access_log: bool = False, queue: "GenerationQueue | None" = None) -> None:
    """Serve `app` until SIGINT or SIGTERM.

    Args:
        queue: the app's generation queue: once the signal came it takes no new jobs, and the
            answers still being written get most of the grace period, then are cancelled,
            so their streams end with an error event rather than a cut connection.

    Raises:
        ConfigError: the address cannot be bound (in use, or not an address of this machine).
    """
    import uvicorn

    from ..errors import ConfigError

    try:
        sock = bind(options)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None
    config = uvicorn.Config(app, log_level="warning", access_log=access_log, lifespan="on",
                            timeout_graceful_shutdown=options.graceful_seconds, server_header=False)
    server = _Server(config)
    if queue is not None:
        server.on_exit = lambda: queue.stop(max(0.0, options.graceful_seconds - 2))
    if on_listening:
        on_listening(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, calling `on_exit` as its shutdown begins (within 0.1 s of the
        first stop signal, before the requests in flight are waited for)."""

        on_exit: Callable[[], None] | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            # Only flags here: a signal handler runs on the event loop's thread, between
            # any two of its bytecodes, possibly inside a section holding the queue's
            # (non-reentrant) lock; `on_exit` taking it here could deadlock the server.
            super().handle_exit(sig, frame)
            # uvicorn raises the signal again once it has shut down, which would end the
            # process by SIGTERM (or KeyboardInterrupt): the shutdown was clean, exit 0.
            getattr(self, "_captured_signals", []).clear()

        async def shutdown(self, sockets: Any = None) -> None:
            if self.on_exit is not None:  # on the loop, between tasks: no lock is held here
                self.on_exit()
            await super().shutdown(sockets=sockets)

    return Server


def _Server(config: Any) -> Any:  # noqa: N802  (a class made on first use: uvicorn is imported late)
    return _server_class()(config)
