import socket

import pytest


def test_guard_refuses_non_loopback_and_allows_loopback(blocked_connections):
    before = len(blocked_connections)
    with pytest.raises(ConnectionRefusedError, match="non-loopback"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1, never routable
    assert len(blocked_connections) == before + 1
    del blocked_connections[before:]  # provoked on purpose: do not fail this test for it

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()
