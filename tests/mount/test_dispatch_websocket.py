"""WebSocket through ``Dispatcher`` on real servers, with a real WebSocket client.

``test_dispatch.py`` drives the dispatcher in-process; here uvicorn (its
WebSocket support from wsproto) and hypercorn (asyncio and trio) do the
handshake and the framing, and the client is wsproto over a plain socket.

* A Starlette WebSocket endpoint mounted at ``/ws`` echoes text and bytes,
  sees the mount in its ``root_path``, and hears the client leave.
* A Flask app (WSGI, the default) keeps answering HTTP on the same server.
* A WebSocket to the WSGI app, or to a path with no app, is refused at the
  handshake: the server answers it with an HTTP 403 and no upgrade (rule C17).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    RejectConnection,
    Request,
    TextMessage,
)

from asgibridge import Dispatcher
from tests.support.asgi_servers import serve
from tests.support.logs import WAIT, capture, wait_for

SERVERS = ("uvicorn", "hypercorn", "hypercorn-trio")

# What the echo endpoint saw, by the token the client sends first.
_seen: dict[str, list[str]] = {}
_guard = threading.Lock()


def _note(token: str, what: str) -> None:
    with _guard:
        _seen.setdefault(token, []).append(what)


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    token = await ws.receive_text()
    _note(token, f"root_path={ws.scope['root_path']} path={ws.scope['path']}")
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                _note(token, f"disconnect {message.get('code')}")
                return
            if message.get("text") is not None:
                if message["text"] == "close":
                    await ws.close(code=4001, reason="asked to")
                    _note(token, "closed")
                    return
                await ws.send_text("echo " + message["text"])
            else:
                await ws.send_bytes(b"echo " + message["bytes"])
    except WebSocketDisconnect:  # pragma: no cover - receive() returns it instead
        _note(token, "disconnect")


def make_app(*, default: bool = True) -> Dispatcher:
    legacy = Flask("legacy")

    @legacy.get("/")
    def index() -> str:
        return "legacy"

    api = Starlette(routes=[WebSocketRoute("/echo", echo)])
    return Dispatcher({"/ws": api}, default=legacy if default else None)


class Client:
    """A WebSocket client: wsproto over a blocking socket, every read bounded by ``WAIT``."""

    def __init__(self, port: int, target: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=target)))
        self.pending: list[Any] = []

    def event(self) -> Any:
        """The next event from the server; ``None`` once the server has closed the socket."""
        deadline = time.monotonic() + WAIT
        while not self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no WebSocket event within {WAIT}s")
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
            if not data and not self.pending:
                return None
        return self.pending.pop(0)

    def send(self, event: Any) -> None:
        self.sock.sendall(self.ws.send(event))

    def message(self) -> Any:
        """The next whole text or bytes message."""
        parts: list[Any] = []
        while True:
            event = self.event()
            assert isinstance(event, Message), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(server: str) -> Iterator[int]:
    with serve(make_app(), server) as url:
        yield int(url.rsplit(":", 1)[1])


def _token(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


@contextmanager
def opened(port: int, token: str) -> Iterator[Client]:
    """A WebSocket to the echo endpoint, accepted and told ``token``; closed on exit."""
    client = Client(port, "/ws/echo")
    try:
        assert isinstance(client.event(), AcceptConnection)
        client.send(TextMessage(data=token))
        yield client
    finally:
        client.close()


def _close_from_server(client: Client) -> None:
    """Ask the endpoint to close; check its code and reason, and answer the close."""
    client.send(TextMessage(data="close"))
    event = client.event()
    assert isinstance(event, CloseConnection), event
    assert (event.code, event.reason) == (4001, "asked to")
    client.send(event.response())


def test_echo_through_the_dispatcher(served: int) -> None:
    token = _token("echo")
    with capture() as log:
        with opened(served, token) as client:
            for n in range(3):
                client.send(TextMessage(data=f"hello {n}"))
                assert client.message() == f"echo hello {n}"
            client.send(BytesMessage(data=b"\x00\xffbinary"))
            assert client.message() == b"echo \x00\xffbinary"
            big = "x" * 200_000  # several frames' worth, reassembled by the server
            client.send(TextMessage(data=big))
            assert client.message() == "echo " + big
            _close_from_server(client)  # code and reason reach the client
        assert wait_for(lambda: "closed" in _seen.get(token, []))
        # The child saw its mount point as root_path, and the full path (rule C1).
        assert _seen[token][0] == "root_path=/ws path=/ws/echo"
        # HTTP on the same server still reaches the WSGI default.
        response = httpx.get(f"http://127.0.0.1:{served}/", timeout=WAIT)
        assert (response.status_code, response.text) == (200, "legacy")
    assert log.texts() == []


# The close code the app hears when the client closes with 1001. hypercorn reports
# 1006 here to an app it serves directly, too: the code is the server's, passed on.
CLIENT_CLOSE_HEARD = {"uvicorn": 1001, "hypercorn": 1006, "hypercorn-trio": 1006}


def test_the_child_hears_the_client_leave(server: str, served: int) -> None:
    token = _token("leave")
    with capture() as log:
        with opened(served, token) as client:
            client.send(TextMessage(data="ping"))
            assert client.message() == "echo ping"
            client.send(CloseConnection(code=1001, reason="going away"))
            event = client.event()
            assert isinstance(event, CloseConnection), event  # the server's answer
        assert wait_for(lambda: any(s.startswith("disconnect") for s in _seen.get(token, [])))
        assert f"disconnect {CLIENT_CLOSE_HEARD[server]}" in _seen[token]
    assert log.texts() == []


def _refused(port: int, target: str) -> int:
    """Open a WebSocket to ``target``; return the HTTP status of the refusal."""
    client = Client(port, target)
    try:
        event = client.event()
        assert isinstance(event, RejectConnection), f"expected a refusal, got {event!r}"
        assert not event.has_body or client.event() is not None
        return int(event.status_code)
    finally:
        client.close()


def test_c17_a_wsgi_child_refuses_the_handshake(served: int) -> None:
    with capture() as log:
        assert _refused(served, "/") == 403
        assert _refused(served, "/anything/else") == 403
        # The refusal leaves the server healthy.
        response = httpx.get(f"http://127.0.0.1:{served}/", timeout=WAIT)
        assert response.status_code == 200
    assert log.texts() == []


def test_c17_no_app_for_the_path_refuses_the_handshake(server: str) -> None:
    with capture() as log:
        with serve(make_app(default=False), server) as url:
            port = int(url.rsplit(":", 1)[1])
            assert _refused(port, "/elsewhere") == 403
            assert httpx.get(f"{url}/elsewhere", timeout=WAIT).status_code == 404
            with opened(port, _token("still")) as client:  # the mount still works
                _close_from_server(client)
    assert log.texts() == []
