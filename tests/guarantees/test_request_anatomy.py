"""WsgiToAsgi calls ``receive()`` only when a request needs it (issue 14), and rules still hold.

A request that cannot have a body (``Content-Length: 0``, or an HTTP/1.x GET
or HEAD with neither Content-Length nor Transfer-Encoding) starts the WSGI app
without a ``receive()``: on granian every call costs a loop iteration and a
wake-up from its Rust threads. The server's empty ``http.request`` then stays
unread, and the disconnect watcher of a streaming response must skip it and
still notice the client leaving (C14), in-process and on granian itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asgibridge.wsgi import WsgiToAsgi
from tests.support import ROOT
from tests.support.drivers import asgi_request
from tests.support.net import free_port as _free_port
from tests.support.scopes import make_scope

Message = dict[str, Any]


def _scope(method: str, headers: list[tuple[bytes, bytes]], http_version: str) -> Message:
    return make_scope(
        http_version=http_version,
        method=method,
        headers=[(b"host", b"h"), *headers],
        client=("127.0.0.1", 5000),
    )


def _run(
    bridge: WsgiToAsgi, scope: Message, messages: list[Message], backend: str
) -> tuple[int, list[Message]]:
    """Serve one request; return (receive() calls, messages sent)."""
    try:
        result = asgi_request(backend, bridge, scope, inbox=messages, then="never", timeout=10)
    finally:
        bridge.close()
    return result.receives, result.messages


def _read_all(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


EMPTY = {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize(
    ("method", "headers", "version", "receives"),
    [
        pytest.param("GET", [], "1.1", 0, id="get-1.1"),
        pytest.param("HEAD", [], "1.0", 0, id="head-1.0"),
        pytest.param("POST", [(b"content-length", b"0")], "1.1", 0, id="post-length-0"),
        pytest.param("GET", [], "2", 1, id="get-http2-may-have-a-body"),
        pytest.param("POST", [], "1.1", 1, id="post-without-length"),
        pytest.param("GET", [(b"transfer-encoding", b"chunked")], "1.1", 1, id="get-chunked"),
    ],
)
def test_c10_bodyless_request_runs_the_app_without_receive(
    executor: str,
    backend: str,
    method: str,
    headers: list[tuple[bytes, bytes]],
    version: str,
    receives: int,
) -> None:
    bridge = WsgiToAsgi(_read_all, executor=executor)  # type: ignore[arg-type]
    calls, sent = _run(bridge, _scope(method, headers, version), [dict(EMPTY)], backend)
    assert calls == receives
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and sent[1].get("body", b"") == b""


@pytest.mark.parametrize("first", ["request", "disconnect"])
def test_c14_streaming_get_notices_disconnect_behind_the_unread_request(
    executor: str, backend: str, first: str
) -> None:
    """The watcher skips the server's unread empty http.request, then sees the disconnect."""
    closed = threading.Event()
    ticks = [0]

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for _ in range(20_000):  # bounded: a missed disconnect fails the count below
                ticks[0] += 1
                yield b"tick"
                if executor == "thread":
                    time.sleep(0.0005)
        finally:
            closed.set()

    messages: list[Message] = [{"type": "http.disconnect"}]
    if first == "request":
        messages.insert(0, dict(EMPTY))
    bridge = WsgiToAsgi(app, executor=executor)  # type: ignore[arg-type]
    calls, sent = _run(bridge, _scope("GET", [], "1.1"), messages, backend)
    assert closed.is_set()
    assert ticks[0] < 20_000  # stopped by the disconnect, not by running out
    assert calls == (2 if first == "request" else 1)
    assert not any(
        m["type"] == "http.response.body" and not m.get("more_body", False) for m in sent
    )


# ------------------------------------------------------------------ on granian itself

_GRANIAN_APP = textwrap.dedent(
    """
    import os, time
    from asgibridge.wsgi import WsgiToAsgi

    EVENTS = os.environ["ANATOMY_TEST_EVENTS"]

    def record(line):
        with open(EVENTS, "a") as f:
            f.write(line + "\\n")

    def hello(environ, start_response):
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello"]

    def stream(environ, start_response):
        start_response("200 OK", [])
        try:
            for _ in range(200_000):
                yield b"x" * 1024
                time.sleep(0.001)
        finally:
            record("closed")

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/stream":
            return stream(environ, start_response)
        return hello(environ, start_response)

    greenlet = WsgiToAsgi(app, executor="greenlet")
    thread = WsgiToAsgi(app)
    """
)


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
        return data


def test_c14_granian_streaming_get_notices_disconnect(executor: str, tmp_path: Path) -> None:
    pytest.importorskip("granian")
    (tmp_path / "anatomy_app.py").write_text(_GRANIAN_APP)
    events = tmp_path / "events.txt"
    events.write_text("")
    port = _free_port()
    root = ROOT
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1", "--no-ws", "--log-level", "error"]
    cmd += ["--working-dir", str(tmp_path), f"anatomy_app:{executor}"]
    proc = subprocess.Popen(
        cmd,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)]),
            "ANATOMY_TEST_EVENTS": str(events),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert _get(port, "/").startswith(b"HTTP/1.1 200")
                break
            except OSError:
                assert proc.poll() is None, "granian exited"
                assert time.monotonic() < deadline, "granian did not start"
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            got = 0
            while got < 64 * 1024:  # the response streams: the app runs
                chunk = c.recv(65536)
                assert chunk
                got += len(chunk)
        # The client has gone: the app's iterator must be closed well before
        # it could run out (200 s of ticks).
        deadline = time.monotonic() + 10
        while "closed" not in events.read_text():
            assert time.monotonic() < deadline, "the disconnect was not noticed"
            time.sleep(0.05)
        assert _get(port, "/").endswith(b"hello")  # and the server still serves
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# ------------------------------------------------------------ AsgiToWsgi raw_path (A7)


@pytest.mark.parametrize(
    "path",
    ["/", "/a/b", "/x;y=1,z", "/~u/_.-", "/a b", "/%41", "/caf\xc3\xa9", "/a?b", "/\x00", ""],
)
def test_a7_raw_path_without_a_server_target_is_the_quoted_path(path: str) -> None:
    """granian sends no RAW_URI/REQUEST_URI: the shortcut must equal percent-encoding."""
    from urllib.parse import quote

    from asgibridge._codec import environ_to_scope

    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "h",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }
    expected = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~").encode("ascii")
    assert environ_to_scope(environ)["raw_path"] == expected
