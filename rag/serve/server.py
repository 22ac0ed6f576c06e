"""Running the app: bind the socket, hand it to uvicorn, return when it has shut down.

The socket is bound here rather than by uvicorn so that the address (and the port the
OS chose for --port 0) is known, and reported, before the first request can arrive.
uvicorn handles SIGINT and SIGTERM: it stops accepting, lets requests in flight finish
(up to `graceful_seconds`, then cancels them, which stops their generation) and runs
the app's shutdown, which closes the queue and the index. Nothing is written to the
index: the server opens it read-only.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

from .options import ServeOptions


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
        access_log: bool = False) -> None:
    """Serve `app` until SIGINT or SIGTERM.

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
    server = uvicorn.Server(config)
    if on_listening:
        on_listening(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
