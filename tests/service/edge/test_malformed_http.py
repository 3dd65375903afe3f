"""A request that is not valid HTTP, on the connection protocol `jobtrail serve` runs
(service/edge/connections.py): a 400 in the API's error shape, not uvicorn's plain text."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import uvicorn

from service.app import create_app
from service.edge.connections import ServerConfig
from tests.support import make_settings, wait_for


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("malformed"))
    config = ServerConfig(
        create_app(settings), limits=settings.limits, host="127.0.0.1", port=0, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive())
        assert server.started
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _answer(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):  # the server closes the connection after it
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), head.lower()


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-K: a\x00b\r\n\r\n", id="nul-in-header"
        ),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX K: v\r\n\r\n", id="space-in-name"),
        pytest.param(b"GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n", id="space-in-target"),
        pytest.param(b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown-version"),
        pytest.param(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
            id="content-length-not-a-number",
        ),
    ],
)
def test_a_request_that_is_not_http_is_400_in_the_error_shape_and_closed(port, request_bytes):
    status, body, head = _answer(port, request_bytes)

    assert status == 400
    assert body == {
        "error": {
            "code": "invalid_request",
            "message": "The request is not valid HTTP.",
            "details": {},
        }
    }
    assert b"connection: close" in head
