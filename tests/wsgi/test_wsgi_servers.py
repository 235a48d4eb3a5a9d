"""WsgiToAsgi on real servers: uvicorn, hypercorn (asyncio) and hypercorn (trio).

A Flask app and a raw WSGI app, each wrapped in ``wsgiref.validate.validator``
and then in ``WsgiToAsgi`` (thread and greenlet executors), are served on
127.0.0.1 on a free port and exercised over loopback with httpx and raw
sockets: GET, a 1 MB POST echo, a streaming response, a chunked upload, 50
back-to-back keep-alive requests, 50 concurrent requests, and clients that
disconnect during an upload and during a streaming response. After the
disconnects, the number of threads and of greenlets must return to where it
was.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
import threading
import time
import wsgiref.validate
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import anyio
import greenlet
import httpx
import pytest
from flask import Flask, Response, request

from asgibridge.errors import ClientDisconnected
from asgibridge.sync import async_to_sync
from asgibridge.wsgi import WsgiToAsgi
from tests.support.asgi_servers import SERVERS, serve
from tests.support.logs import wait_for as poll

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

# ------------------------------------------------------------- what apps record

_events: dict[str, list[str]] = {}
_events_lock = threading.Lock()


def record(token: str, event: str) -> None:
    with _events_lock:
        _events.setdefault(token, []).append(event)


def events(token: str) -> list[str]:
    with _events_lock:
        return list(_events.get(token, ()))


wait_for = functools.partial(poll, timeout=10.0, step=0.02)


def pause(seconds: float) -> None:
    """Sleep without blocking the loop in greenlet mode (and on trio)."""
    async_to_sync(anyio.sleep)(seconds)


# ------------------------------------------------------------------ the raw app


def _read_all(stream: Any, token: str) -> Iterator[bytes]:
    record(token, "reading")
    try:
        while chunk := stream.read(65536):
            yield chunk
    except ClientDisconnected:
        record(token, "disconnected")
        raise


def raw_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    token = query.get("token", "-")
    text = [("Content-Type", "text/plain")]
    if path == "/":
        start_response("200 OK", [*text, ("Content-Length", "13")])
        return [b"Hello, World!"]
    if path == "/port":
        port = environ.get("REMOTE_PORT", "").encode()
        start_response("200 OK", [*text, ("Content-Length", str(len(port)))])
        return [port]
    if path == "/echo":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _read_all(environ["wsgi.input"], token)
    if path == "/count":
        total = sum(len(c) for c in _read_all(environ["wsgi.input"], token))
        body = str(total).encode()
        start_response("200 OK", [*text, ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", text)
        return _lines(int(query.get("n", "5")), float(query.get("delay", "0.05")), token)
    start_response("404 Not Found", [*text, ("Content-Length", "9")])
    return [b"not found"]


def _lines(n: int, delay: float, token: str) -> Iterator[bytes]:
    try:
        for i in range(n):
            if i:
                pause(delay)
            yield f"line {i}\n".encode()
    finally:
        record(token, "closed")


# ---------------------------------------------------------------- the Flask app

flask_app = Flask("wsgi-servers")


@flask_app.get("/")
def flask_hello() -> str:
    return "Hello, World!"


@flask_app.get("/port")
def flask_port() -> str:
    return str(request.environ.get("REMOTE_PORT", ""))


@flask_app.post("/echo")
def flask_echo() -> Response:
    token = request.args.get("token", "-")
    return Response(_read_all(request.stream, token), mimetype="application/octet-stream")


@flask_app.post("/count")
def flask_count() -> str:
    token = request.args.get("token", "-")
    return str(sum(len(c) for c in _read_all(request.stream, token)))


@flask_app.get("/stream")
def flask_stream() -> Response:
    n = int(request.args.get("n", "5"))
    delay = float(request.args.get("delay", "0.05"))
    token = request.args.get("token", "-")
    return Response(_lines(n, delay, token), mimetype="text/plain")


APPS: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "raw": raw_app,
    "flask": flask_app.wsgi_app,
}

# ------------------------------------------------------------------- fixtures


class Served:
    def __init__(self, url: str, bridge: WsgiToAsgi, server: str) -> None:
        self.url = url
        self.bridge = bridge
        self.server = server
        self.port = int(url.rsplit(":", 1)[1])


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((server, app, executor), id=f"{server}-{app}-{executor}")
        for server in SERVERS
        for app in APPS
        for executor in ("thread", "greenlet")
    ],
)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    server, app_name, executor = request.param
    bridge = WsgiToAsgi(
        wsgiref.validate.validator(APPS[app_name]),
        executor=executor,
        idle_timeout=0.3,
    )
    try:
        with serve(bridge, server) as url:
            yield Served(url, bridge, server)
    finally:
        bridge.close()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=20.0) as c:
        yield c


def busy_greenlets() -> int:
    """Bridge greenlets that are running a request (parked ones have no driver)."""
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, greenlet.greenlet) and getattr(o, "driver", None) is not None
    )


def all_greenlets() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet))


def workers_idle(served: Served) -> bool:
    bridge = served.bridge
    return bridge.executor == "greenlet" or bridge._adm is None or bridge.pool.size == 0


# ---------------------------------------------------------------------- tests


def test_get(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello, World!"
    assert response.headers["content-length"] == "13"


def test_post_echo_1mb(client: httpx.Client) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    response = client.post("/echo", content=payload)
    assert response.status_code == 200
    assert response.content == payload


def test_streaming_response(client: httpx.Client) -> None:
    arrivals: list[float] = []
    start = time.monotonic()
    with client.stream("GET", "/stream?n=5&delay=0.1") as response:
        assert response.status_code == 200
        lines = []
        for line in response.iter_lines():
            arrivals.append(time.monotonic() - start)
            lines.append(line)
    assert lines == [f"line {i}" for i in range(5)]
    # The first line arrived long before the last one was produced.
    assert arrivals[0] < arrivals[-1] - 0.25, arrivals


def test_chunked_upload(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"c" * 10_000

    response = client.post("/count", content=chunks())
    assert response.status_code == 200
    assert response.text == "640000"


def test_keep_alive_back_to_back(client: httpx.Client) -> None:
    ports = set()
    for _ in range(50):
        response = client.get("/port")
        assert response.status_code == 200
        ports.add(response.text)
    assert len(ports) == 1  # one connection, reused for all 50 requests
    for _ in range(50):
        assert client.get("/").status_code == 200


def test_50_concurrent_requests(served: Served) -> None:
    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=30) as c:
            responses = await asyncio.gather(*(c.get("/") for _ in range(50)))
            return [r.status_code for r in responses if r.text == "Hello, World!"]

    assert asyncio.run(main()) == [200] * 50


def _baseline(served: Served) -> tuple[int, int]:
    assert wait_for(lambda: workers_idle(served), timeout=10), "workers did not go idle"
    return threading.active_count(), all_greenlets()


def _assert_back_to_baseline(served: Served, threads: int, greenlets: int) -> None:
    assert wait_for(lambda: workers_idle(served), timeout=10), "a worker is stuck"
    assert wait_for(lambda: threading.active_count() <= threads, timeout=10), (
        threading.active_count(),
        threads,
    )
    assert wait_for(lambda: busy_greenlets() == 0, timeout=10, step=0.1)
    assert all_greenlets() <= greenlets


def test_client_disconnects_during_upload(served: Served, client: httpx.Client) -> None:
    client.post("/count", content=b"warm up")
    threads, greenlets = _baseline(served)
    token = f"upload-{served.server}-{time.monotonic_ns()}"
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(
            f"POST /count?token={token} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n".encode()
        )
        conn.sendall(b"u" * 300_000)
        assert wait_for(lambda: "reading" in events(token)), "the app never started reading"
    assert wait_for(lambda: "disconnected" in events(token)), events(token)
    _assert_back_to_baseline(served, threads, greenlets)
    assert client.get("/").status_code == 200  # still serving


def test_client_disconnects_during_streaming(served: Served, client: httpx.Client) -> None:
    client.get("/stream?n=2&delay=0.01")
    threads, greenlets = _baseline(served)
    token = f"stream-{served.server}-{time.monotonic_ns()}"
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(
            f"GET /stream?n=100000&delay=0.01&token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        received = b""
        while b"line 3" not in received:
            data = conn.recv(4096)
            assert data, "the server closed the stream early"
            received += data
    assert wait_for(lambda: "closed" in events(token)), "the response iterable was not closed"
    _assert_back_to_baseline(served, threads, greenlets)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-uvloop"])
def test_greenlet_mode_runs_on_the_servers_own_loop(server: str) -> None:
    """The "uvicorn-uvloop" runs above really run on uvloop, and greenlet mode on its thread."""

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # Sync code sees no running loop (rule U7), but greenlet mode runs it on
        # the server's own thread, and async_to_sync switches to that loop.
        assert threading.current_thread().name == f"test-{server}"
        body = async_to_sync(loop_module)().encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    bridge = WsgiToAsgi(app, executor="greenlet")
    try:
        with serve(bridge, server) as url:
            reply = httpx.get(url + "/", timeout=10.0)
    finally:
        bridge.close()
    assert reply.status_code == 200
    assert reply.text == ("uvloop" if server == "uvicorn-uvloop" else "asyncio")


# ------------------------------------------------- errors are logged exactly once

_SHORT_APP = """
from asgibridge import WsgiToAsgi


def short(environ, start_response):
    marker = environ["PATH_INFO"].strip("/")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    return [b"only " + marker.encode()]


def raises(environ, start_response):
    raise RuntimeError("app boom " + environ["PATH_INFO"].strip("/"))


def app_for(inner, executor):
    return WsgiToAsgi(inner, executor=executor)


short_thread = app_for(short, "thread")
short_greenlet = app_for(short, "greenlet")
raises_thread = app_for(raises, "thread")
"""


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        pytest.param("short_thread", "sent only", id="short-content-length-thread"),
        pytest.param("short_greenlet", "sent only", id="short-content-length-greenlet"),
        pytest.param("raises_thread", "RuntimeError: app boom", id="app-raises"),
    ],
)
def test_c16_errors_are_logged_exactly_once_by_uvicorn(
    tmp_path: Any, target: str, pattern: str
) -> None:
    """The bridge raises to uvicorn, which logs the error with its traceback; nothing else does."""
    from tests.support.asgi_servers import uvicorn_process

    (tmp_path / "once_app.py").write_text(_SHORT_APP)
    with uvicorn_process(f"once_app:{target}", chdir=tmp_path) as server:
        # The readiness probe was answered by the app too: count only what follows.
        assert wait_for(lambda: pattern in server.log(), timeout=10.0), server.log()
        time.sleep(0.3)
        skip = len(server.log())
        marker = f"m{time.monotonic_ns()}"
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            if target.startswith("short"):
                with pytest.raises(httpx.HTTPError):  # aborted: fewer bytes than declared
                    client.get(f"/{marker}").read()
            else:
                assert client.get(f"/{marker}").status_code == 500
        assert wait_for(lambda: pattern in server.log()[skip:], timeout=10.0), server.log()
        time.sleep(0.3)  # a second record would be written by now
        text = server.log()[skip:]
    assert text.count(pattern) == 1, text
    assert text.count("Traceback (most recent call last)") == 1, text
