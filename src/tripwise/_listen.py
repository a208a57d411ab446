"""The listening socket of a server we run with uvicorn (``tripwise serve``, ``tripwise gateway``).

Bound before uvicorn starts and handed to it (``server.run(sockets=[sock])``), so a taken port
ends in one line that names the address, before the app's startup ran: left to itself, uvicorn
runs the app's lifespan first, then logs its own error and calls ``sys.exit(3)``.
"""

from __future__ import annotations

import errno
import socket


class ListenError(OSError):
    """The server cannot listen on ``host:port``; ``str()`` is the one line to show the user."""


def address(host: str, port: int) -> str:
    """``host:port`` as a user types it (``[::1]:8080`` for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` the way uvicorn binds one (IPv6 when ``host`` holds a
    ``:``, ``SO_REUSEADDR``); raises :class:`ListenError` naming the address when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = "the port is already in use (is another server running there?)"
        else:
            why = exc.strerror or str(exc)
        error = ListenError(f"cannot listen on {address(host, port)}: {why}")
        error.errno = exc.errno
        raise error from exc
    return sock
