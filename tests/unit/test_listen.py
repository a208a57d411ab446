"""The listening socket of ``tripwise serve`` (and the gateway): a taken port is one line."""

from __future__ import annotations

import errno
import socket

import pytest

from tripwise._listen import ListenError, address, listen_socket


def test_a_free_port_is_bound_and_a_taken_one_named() -> None:
    with listen_socket("127.0.0.1", 0) as sock:
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            listen_socket("127.0.0.1", port)
    assert caught.value.errno == errno.EADDRINUSE
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: "
        "the port is already in use (is another server running there?)"
    )


def test_other_bind_errors_keep_the_system_reason() -> None:
    with pytest.raises(ListenError) as caught:
        listen_socket("192.0.2.1", 0)  # TEST-NET-1: no interface of this host has it
    assert caught.value.errno == errno.EADDRNOTAVAIL
    assert str(caught.value).startswith("cannot listen on 192.0.2.1:0: ")


def test_ipv6_addresses_are_bracketed() -> None:
    assert address("::1", 8080) == "[::1]:8080"
    assert address("localhost", 8080) == "localhost:8080"
    if socket.has_ipv6:
        try:
            sock = listen_socket("::1", 0)
        except ListenError:
            pytest.skip("no IPv6 loopback on this host")
        with sock:
            assert sock.family == socket.AF_INET6
