"""Fault injection at every step of a request, in both directions.

For each fault the test checks four things:

1. the client gets the right status (500 when nothing was sent yet) or an
   aborted response (the connection ends before the body does);
2. ``close()`` was called on the WSGI iterable (WsgiToAsgi), or the ASGI
   task's ``finally`` ran (AsgiToWsgi);
3. the error is logged exactly once, counting every logger (the bridge's
   and the server's): one ERROR record, with its traceback;
4. nothing is left behind: no busy worker thread (``threading.active_count``
   less the bridge's idle pool), no busy ``BridgeGreenlet`` (found with
   ``gc``), no asyncio task beyond the loop's own.

WsgiToAsgi faults: the app raises before ``start_response``, after it, at
the first and a later iteration, or in ``close()``; the server's ``send()``
raises at each message; ``receive()`` returns ``http.disconnect`` at each
point of the body and during the response; a real client disconnects
mid-upload and mid-stream on uvicorn.

AsgiToWsgi faults: the app raises before ``http.response.start``, after it,
after the first body chunk, or after the response is complete; the WSGI
server stops reading the response after each message (so the app's
``send()`` fails); ``wsgi.input`` fails at each read (so ``receive()``
returns ``http.disconnect``); a real client disconnects mid-upload and
mid-stream on waitress.

In process, the test plays the server's part the way uvicorn and waitress
do: an exception that escapes the bridge is logged once by the "server", so
a bridge that logs *and* raises is counted twice.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from asgibridge._core import BridgeGreenlet
from asgibridge.asgi import AsgiToWsgi
from asgibridge.sync import async_to_sync
from asgibridge.wsgi import WsgiToAsgi
from tests.support.asgi_servers import serve
from tests.support.logs import WAIT, LogCapture, capture, wait_for
from tests.support.wsgi_servers import waitress_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


# ------------------------------------------------------------------- logs


def assert_logged_once(log: LogCapture, what: str, escaped: BaseException | None = None) -> None:
    """One ERROR record in all, with a traceback; an exception that escaped counts as one."""
    texts = log.texts()
    count = len(texts) + (escaped is not None)
    assert count == 1, f"{what}: logged {count} times: {texts} (escaped: {escaped!r})"
    if texts:
        assert "Traceback" in texts[0] or escaped is None, texts[0]


# --------------------------------------------------------------- leftovers


def busy_bridge_greenlets() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, BridgeGreenlet) and not o.dead and o.driver is not None
    )


def non_pool_threads(bridge: WsgiToAsgi) -> int:
    pool = 0 if bridge.executor == "greenlet" or bridge._adm is None else bridge.pool.size
    return threading.active_count() - pool


def pool_idle(bridge: WsgiToAsgi) -> bool:
    return bridge.executor == "greenlet" or bridge._adm is None or bridge.pool.busy == 0


# =============================================================================
# WsgiToAsgi: the WSGI app misbehaves, or the ASGI server's side fails
# =============================================================================

_closed: dict[str, int] = {}
_closed_lock = threading.Lock()


def _mark_closed(token: str) -> None:
    with _closed_lock:
        _closed[token] = _closed.get(token, 0) + 1


def closed(token: str) -> int:
    with _closed_lock:
        return _closed.get(token, 0)


class Body:
    """A WSGI response iterable that records close() and can fail on purpose."""

    def __init__(
        self,
        token: str,
        chunks: int,
        *,
        fail_at: int | None = None,
        close_fails: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.token = token
        self.chunks = chunks
        self.fail_at = fail_at
        self.close_fails = close_fails
        self.delay = delay

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            if i == self.fail_at:
                raise RuntimeError(f"boom {self.token} at chunk {i}")
            if i and self.delay:
                async_to_sync(asyncio.sleep)(self.delay)
            yield b"chunk %d\n" % i
        if self.fail_at == self.chunks:
            raise RuntimeError(f"boom {self.token} at the end")

    def close(self) -> None:
        _mark_closed(self.token)
        if self.close_fails:
            raise RuntimeError(f"boom {self.token} in close")


def fault_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/<fault>?<token>``: misbehave as the fault says."""
    fault = environ["PATH_INFO"].strip("/")
    token = environ["QUERY_STRING"]
    if fault == "before":
        raise RuntimeError(f"boom {token} before start_response")
    if fault == "read":  # read the whole body, then answer its length
        total = 0
        try:
            while chunk := environ["wsgi.input"].read(4096):
                total += len(chunk)
        except BaseException:
            _mark_closed(token)  # nothing to close: mark that the app saw the failure
            raise
        start_response("200 OK", [("Content-Length", str(len(str(total))))])
        return _Once(token, str(total).encode())
    start_response("200 OK", [("Content-Type", "text/plain")])
    if fault == "after":
        raise RuntimeError(f"boom {token} after start_response")
    if fault == "first":
        return Body(token, 3, fail_at=0)
    if fault == "mid":
        return Body(token, 3, fail_at=2)
    if fault == "end":
        return Body(token, 3, fail_at=3)
    if fault == "close":
        return Body(token, 3, close_fails=True)
    if fault == "stream":
        return Body(token, 200, delay=0.02)
    return Body(token, 3)


class _Once:
    def __init__(self, token: str, data: bytes) -> None:
        self.token = token
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        _mark_closed(self.token)


def _token(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


# ------------------------------------------------- WsgiToAsgi over uvicorn


def http_exchange(port: int, request: bytes) -> tuple[int | None, bytes, bool]:
    """Send ``request``; return (status, body, complete) once the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
        conn.sendall(request)
        data = bytearray()
        while chunk := conn.recv(65536):
            data += chunk
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return None, b"", False
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        return status, body, body.endswith(b"0\r\n\r\n")
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return status, body, len(body) == int(line.split(b":")[1])
    return status, body, True


_server_loops: list[asyncio.AbstractEventLoop] = []


async def _remember_loop() -> None:
    _server_loops.append(asyncio.get_running_loop())


def server_tasks() -> int:
    """Tasks on uvicorn's loop (its own serving tasks included), counted from inside it."""
    loop = _server_loops[-1]
    return asyncio.run_coroutine_threadsafe(_count_tasks(), loop).result(WAIT)


@pytest.fixture(scope="module", params=["thread", "greenlet"])
def uvicorn_bridge(request: pytest.FixtureRequest) -> Iterator[tuple[WsgiToAsgi, int]]:
    bridge = WsgiToAsgi(fault_app, executor=request.param, on_startup=_remember_loop)
    try:
        with serve(bridge, "uvicorn") as url:
            yield bridge, int(url.rsplit(":", 1)[1])
    finally:
        bridge.close()


@pytest.fixture
def no_tasks_left(uvicorn_bridge: tuple[WsgiToAsgi, int]) -> Iterator[None]:
    """uvicorn's loop has no more tasks after the test than before it."""
    assert wait_for(lambda: pool_idle(uvicorn_bridge[0]))
    before = server_tasks()
    yield
    assert wait_for(lambda: server_tasks() <= before), (server_tasks(), before)


WSGI_FAULTS = [
    # (fault, expected status, response completes?)
    pytest.param("before", 500, True, id="raises-before-start_response"),
    pytest.param("after", 500, True, id="raises-after-start_response"),
    pytest.param("first", 500, True, id="raises-at-first-iteration"),
    pytest.param("mid", 200, False, id="raises-mid-iteration"),
    pytest.param("end", 200, False, id="raises-after-last-chunk"),
    pytest.param("close", 200, True, id="raises-in-close"),
]


@pytest.mark.usefixtures("no_tasks_left")
@pytest.mark.parametrize(("fault", "status", "complete"), WSGI_FAULTS)
def test_c9_c14_wsgi_app_faults_on_uvicorn(
    uvicorn_bridge: tuple[WsgiToAsgi, int], fault: str, status: int, complete: bool
) -> None:
    bridge, port = uvicorn_bridge
    assert wait_for(lambda: pool_idle(bridge))
    threads = non_pool_threads(bridge)
    token = _token(fault)
    with capture(logging.ERROR) as log:
        got, body, done = http_exchange(
            port, f"GET /{fault}?{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert wait_for(lambda: pool_idle(bridge) and busy_bridge_greenlets() == 0)
        assert wait_for(lambda: len(log.texts()) >= 1)
        time.sleep(0.05)  # a second log line, if any, comes right after the first
    assert (got, done) == (status, complete), body[:300]
    if fault not in ("before", "after"):  # no iterable to close when the call raised
        assert closed(token) == 1, "close() was not called exactly once"
    assert_logged_once(log, fault)
    assert token in log.texts()[0] or "Traceback" in log.texts()[0]
    assert wait_for(lambda: non_pool_threads(bridge) <= threads)


@pytest.mark.usefixtures("no_tasks_left")
def test_c11_c14_client_leaves_mid_upload_on_uvicorn(
    uvicorn_bridge: tuple[WsgiToAsgi, int],
) -> None:
    bridge, port = uvicorn_bridge
    assert wait_for(lambda: pool_idle(bridge))
    threads = non_pool_threads(bridge)
    token = _token("upload")
    with capture(logging.ERROR) as log:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
            conn.sendall(
                f"POST /read?{token} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode()
                + b"x" * 200_000
            )
            time.sleep(0.1)
        assert wait_for(lambda: closed(token) == 1), "the app's read never failed"
        assert wait_for(lambda: pool_idle(bridge) and busy_bridge_greenlets() == 0)
        time.sleep(0.1)
    # The client left: its departure is not an application error.
    assert len(log.texts()) <= 1, log.texts()
    assert wait_for(lambda: non_pool_threads(bridge) <= threads)


@pytest.mark.usefixtures("no_tasks_left")
def test_c14_client_leaves_mid_stream_on_uvicorn(uvicorn_bridge: tuple[WsgiToAsgi, int]) -> None:
    bridge, port = uvicorn_bridge
    assert wait_for(lambda: pool_idle(bridge))
    threads = non_pool_threads(bridge)
    token = _token("stream")
    with capture(logging.ERROR) as log:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
            conn.sendall(f"GET /stream?{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        # 200 chunks 20 ms apart take 4 s: close() must come long before that.
        assert wait_for(lambda: closed(token) == 1, timeout=2.0), "close() was not called"
        assert wait_for(lambda: pool_idle(bridge) and busy_bridge_greenlets() == 0)
    assert log.texts() == []
    assert wait_for(lambda: non_pool_threads(bridge) <= threads)


# ------------------------------------------ WsgiToAsgi in process: send / receive


class Server:
    """Plays the ASGI server for one request: a scripted receive(), a send() that can fail."""

    def __init__(
        self,
        body: list[bytes],
        *,
        disconnect_at: int | None = None,
        send_fails_at: int | None = None,
        send_error: type[BaseException] = OSError,
    ) -> None:
        self.script: list[dict[str, Any]] = [
            {"type": "http.request", "body": b, "more_body": i < len(body) - 1}
            for i, b in enumerate(body)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        if disconnect_at is not None:
            self.script[disconnect_at:] = [{"type": "http.disconnect"}]
        self.send_fails_at = send_fails_at
        self.send_error = send_error
        self.sent: list[dict[str, Any]] = []
        self.done: asyncio.Event | None = None

    async def receive(self) -> dict[str, Any]:
        if self.script:
            message = self.script.pop(0)
            if message["type"] == "http.disconnect":
                self.script.insert(0, message)  # stays disconnected
            return message
        assert self.done is not None
        await self.done.wait()  # after the body: wait for the response to end
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if len(self.sent) == self.send_fails_at:
            self.sent.append({"type": "failed"})
            raise self.send_error(f"send failed at message {self.send_fails_at}")
        self.sent.append(message)

    def run(self, app: Any, path: str, method: str = "GET") -> BaseException | None:
        """Run one request; return the exception that escaped the app, if any."""

        async def main() -> BaseException | None:
            self.done = asyncio.Event()
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path.partition("?")[0],
                "raw_path": path.partition("?")[0].encode(),
                "query_string": path.partition("?")[2].encode(),
                "root_path": "",
                "headers": [(b"host", b"x")],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 2),
            }
            if method == "POST":
                total = sum(len(m.get("body", b"")) for m in self.script) + 1000
                scope["headers"].append((b"content-length", str(total).encode()))
            escaped: BaseException | None = None
            try:
                await asyncio.wait_for(app(scope, self.receive, self.send), WAIT)
            except Exception as exc:
                escaped = exc
            self.done.set()
            for _ in range(5):
                await asyncio.sleep(0)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert others == [], f"tasks left behind: {others}"
            return escaped

        return asyncio.run(main())


@pytest.fixture(params=["thread", "greenlet"])
def bridge(request: pytest.FixtureRequest) -> Iterator[WsgiToAsgi]:
    threads = threading.active_count()
    b = WsgiToAsgi(fault_app, executor=request.param)
    yield b
    b.close()
    assert wait_for(lambda: threading.active_count() <= threads), threading.enumerate()
    assert busy_bridge_greenlets() == 0


@pytest.mark.parametrize("at", range(5))
@pytest.mark.parametrize("error", [OSError, RuntimeError])
def test_c14_server_send_raises_at_each_message(
    bridge: WsgiToAsgi, at: int, error: type[BaseException]
) -> None:
    """A 3-chunk response is up to 5 messages; send() fails at each one."""
    token = _token(f"send{at}")
    server = Server([], send_fails_at=at, send_error=error)
    with capture(logging.ERROR) as log:
        escaped = server.run(bridge, f"/ok?{token}")
        assert wait_for(lambda: pool_idle(bridge))
    assert closed(token) == 1, "close() was not called"
    sent = [m["type"] for m in server.sent]
    if at >= len(sent):  # the response had fewer messages: nothing failed
        assert escaped is None and log.texts() == []
        return
    assert sent[at] == "failed" and len(sent) == at + 1, sent
    if error is OSError:
        # The connection is gone: not an application error, at most one line.
        assert len(log.texts()) + (escaped is not None) <= 1, (log.texts(), escaped)
    else:
        assert_logged_once(log, f"send raised {error.__name__}", escaped)


@pytest.mark.parametrize("at", range(4))
def test_c11_receive_disconnects_at_each_point_of_the_body(bridge: WsgiToAsgi, at: int) -> None:
    """A 3-message upload; http.disconnect comes instead of message ``at`` (3: after it)."""
    token = _token(f"recv{at}")
    server = Server([b"a" * 100_000, b"b" * 100_000, b"c" * 100_000], disconnect_at=at)
    with capture(logging.ERROR) as log:
        escaped = server.run(bridge, f"/read?{token}", method="POST")
        assert wait_for(lambda: pool_idle(bridge))
    if at == 0:  # the client left before the app was called
        assert closed(token) == 0 and server.sent == []
    else:
        assert closed(token) == 1, "the app's read did not fail"
        assert not any(m.get("more_body") is False for m in server.sent), server.sent
    assert len(log.texts()) + (escaped is not None) <= 1, (log.texts(), escaped)


def test_c14_receive_disconnects_during_the_response(bridge: WsgiToAsgi) -> None:
    """The client leaves while a long response streams: the iterator stops and is closed."""
    token = _token("recv-stream")
    server = Server([])

    async def leave_soon() -> None:
        await asyncio.sleep(0.2)
        assert server.done is not None
        server.done.set()  # receive() now returns http.disconnect

    original = server.receive
    started = False

    async def receive() -> dict[str, Any]:
        nonlocal started
        if not started:
            started = True
            asyncio.get_running_loop().create_task(leave_soon())
        return await original()

    server.receive = receive  # type: ignore[method-assign]
    t0 = time.monotonic()
    with capture(logging.ERROR) as log:
        escaped = server.run(bridge, f"/stream?{token}")
        assert wait_for(lambda: pool_idle(bridge))
    assert time.monotonic() - t0 < 3.0, "the response ran to its end after the client left"
    assert closed(token) == 1
    assert escaped is None and log.texts() == []


# =============================================================================
# AsgiToWsgi: the ASGI app misbehaves, or the WSGI server's side fails
# =============================================================================

_finally: dict[str, int] = {}


async def asgi_fault_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    fault = scope["path"].strip("/")
    token = scope["query_string"].decode()
    try:
        if fault == "read":
            total = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise OSError(f"client left {token}")
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = str(total).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if fault == "before":
            raise RuntimeError(f"boom {token} before start")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-token", b"1")]})
        if fault == "after":
            raise RuntimeError(f"boom {token} after start")
        chunks = 200 if fault == "stream" else 3
        for i in range(chunks):
            if fault == "mid" and i == 1:
                raise RuntimeError(f"boom {token} mid-body")
            if fault == "stream" and i:
                await asyncio.sleep(0.02)
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        if fault == "complete":
            raise RuntimeError(f"boom {token} after the response")
    finally:
        _finally[token] = _finally.get(token, 0) + 1


def environ_for(path: str, body: bytes | io.RawIOBase | None = None, length: int = 0) -> Environ:
    stream = body if not isinstance(body, bytes) and body is not None else io.BytesIO(body or b"")
    return {
        "REQUEST_METHOD": "POST" if length else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path.partition("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "1",
        "CONTENT_LENGTH": str(length) if length else "",
        "HTTP_HOST": "x",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


class WsgiServer:
    """Plays the WSGI server for one request, as waitress does: logs what escapes, once."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.status: str | None = None
        self.chunks: list[bytes] = []
        self.escaped: BaseException | None = None
        self.stop_after = stop_after
        self.complete = False
        self.exc_info: Any = None

    def start_response(self, status: str, headers: list[Any], exc_info: Any = None) -> Any:
        self.status = status
        self.exc_info = exc_info
        return self.chunks.append

    def run(self, app: Any, environ: Environ) -> None:
        result = None
        try:
            result = app(environ, self.start_response)
            for chunk in result:
                self.chunks.append(chunk)
                if self.stop_after is not None and len(self.chunks) >= self.stop_after:
                    return  # the client went away: stop reading
            self.complete = True
        except Exception as exc:
            self.escaped = exc
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


@pytest.fixture(scope="module")
def asgi_bridge() -> Iterator[AsgiToWsgi]:
    bridge = AsgiToWsgi(asgi_fault_app)
    bridge.start()
    yield bridge
    bridge.close()


def bridge_tasks(bridge: AsgiToWsgi) -> int:
    """Tasks on the bridge's loop, from inside it."""
    loop = bridge._aloop
    future = asyncio.run_coroutine_threadsafe(_count_tasks(), loop)
    return future.result(WAIT)


async def _count_tasks() -> int:
    return len(asyncio.all_tasks()) - 1


ASGI_FAULTS = [
    pytest.param("before", "500", True, id="raises-before-start"),
    pytest.param("after", "500", True, id="raises-after-start"),
    pytest.param("mid", "200", False, id="raises-mid-body"),
    pytest.param("complete", "200", True, id="raises-after-the-response"),
]


@pytest.mark.parametrize(("fault", "status", "complete"), ASGI_FAULTS)
def test_a4_a6_asgi_app_faults(
    asgi_bridge: AsgiToWsgi, fault: str, status: str, complete: bool
) -> None:
    tasks = bridge_tasks(asgi_bridge)
    threads = threading.active_count()
    token = _token(fault)
    server = WsgiServer()
    with capture(logging.ERROR) as log:
        server.run(asgi_bridge, environ_for(f"/{fault}?{token}"))
        assert wait_for(lambda: _finally.get(token) == 1), "the app's finally did not run"
        assert wait_for(lambda: bridge_tasks(asgi_bridge) <= tasks)
        time.sleep(0.05)
    assert server.status is not None and server.status.startswith(status), server.status
    assert server.complete is complete, (server.chunks, server.escaped)
    if status == "500":  # so that WSGI test clients can re-raise the app's error (defect 8)
        assert server.exc_info is not None and token in str(server.exc_info[1])
    assert_logged_once(log, fault, server.escaped)
    assert threading.active_count() <= threads


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_a4_wsgi_server_stops_reading_after_each_message(
    asgi_bridge: AsgiToWsgi, stop_after: int
) -> None:
    """The client leaves while the app streams: the task is cancelled and its finally runs."""
    tasks = bridge_tasks(asgi_bridge)
    token = _token(f"stop{stop_after}")
    server = WsgiServer(stop_after=stop_after)
    with capture(logging.ERROR) as log:
        server.run(asgi_bridge, environ_for(f"/stream?{token}"))
        assert wait_for(lambda: _finally.get(token) == 1, timeout=2.0), "finally did not run"
        assert wait_for(lambda: bridge_tasks(asgi_bridge) <= tasks)
    assert len(server.chunks) == stop_after and server.escaped is None
    assert log.texts() == []


class FailingInput(io.RawIOBase):
    """A ``wsgi.input`` whose read fails at read number ``fail_at``."""

    def __init__(self, size: int, fail_at: int) -> None:
        self.left = size
        self.reads = 0
        self.fail_at = fail_at

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.reads == self.fail_at:
            raise OSError("client connection reset")
        self.reads += 1
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return b"x" * n


@pytest.mark.parametrize("fail_at", range(3))
def test_a5_receive_gets_disconnect_at_each_read(asgi_bridge: AsgiToWsgi, fail_at: int) -> None:
    """The upload fails at each read: the app sees http.disconnect, nothing is left running."""
    tasks = bridge_tasks(asgi_bridge)
    token = _token(f"input{fail_at}")
    size = 3 * 65536
    server = WsgiServer()
    with capture(logging.ERROR) as log:
        server.run(asgi_bridge, environ_for(f"/read?{token}", FailingInput(size, fail_at), size))
        assert wait_for(lambda: _finally.get(token) == 1), "the app's finally did not run"
        assert wait_for(lambda: bridge_tasks(asgi_bridge) <= tasks)
    assert server.status is None or not server.status.startswith("200"), server.status
    assert len(log.texts()) + (server.escaped is not None) <= 1, (log.texts(), server.escaped)


# ----------------------------------------- AsgiToWsgi on waitress, real clients


@pytest.fixture(scope="module")
def waitress_port(asgi_bridge: AsgiToWsgi) -> Iterator[int]:
    with waitress_server(asgi_bridge) as served:
        yield int(served.url.rsplit(":", 1)[1])


def test_a4_client_leaves_mid_stream_on_waitress(
    asgi_bridge: AsgiToWsgi, waitress_port: int
) -> None:
    tasks = bridge_tasks(asgi_bridge)
    token = _token("wstream")
    with capture(logging.ERROR) as log:
        with socket.create_connection(("127.0.0.1", waitress_port), timeout=WAIT) as conn:
            conn.sendall(f"GET /stream?{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: _finally.get(token) == 1, timeout=8.0), "finally did not run"
        assert wait_for(lambda: bridge_tasks(asgi_bridge) <= tasks)
    assert log.texts() == []


def test_a5_client_leaves_mid_upload_on_waitress(
    asgi_bridge: AsgiToWsgi, waitress_port: int
) -> None:
    tasks = bridge_tasks(asgi_bridge)
    token = _token("wupload")
    with capture(logging.ERROR) as log:
        with socket.create_connection(("127.0.0.1", waitress_port), timeout=WAIT) as conn:
            conn.sendall(
                f"POST /read?{token} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                + b"10000\r\n"
                + b"x" * 0x10000
                + b"\r\n"
            )
            time.sleep(0.2)
        # waitress buffers a request before calling the app: a request the
        # client abandoned may never reach it. Either way nothing is left running.
        assert wait_for(lambda: bridge_tasks(asgi_bridge) <= tasks)
    assert log.texts() == []


# ---------------------------------------------- AsgiToWsgi: faults at lifespan


def _ignores_lifespan(mode: str) -> Callable[..., Any]:
    """An app that mishandles the lifespan scope in the way ``mode`` names."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if mode == "raises":
                raise RuntimeError("this app has no lifespan")
            if mode == "receives-twice":  # waits for a message that never comes
                await receive()
                await receive()
                return
            if mode == "receives-then-sends-http":  # raw middleware: receive() first
                await receive()
        # "sends-http" and the rest: answer as if every scope were http
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize(
    "mode", ["raises", "sends-http", "receives-then-sends-http", "receives-twice"]
)
def test_a12_lifespan_faults_do_not_stop_requests(mode: str) -> None:
    """Lifespan "auto": an app that does not do lifespan is served at once, without it."""
    threads = threading.active_count()
    bridge = AsgiToWsgi(_ignores_lifespan(mode))
    try:
        server = WsgiServer()
        t0 = time.monotonic()
        server.run(bridge, environ_for("/"))
        took = time.monotonic() - t0
        assert (server.status, server.chunks, server.complete) == ("200 OK", [b"ok"], True)
        assert took < 5.0, f"the first request waited {took:.1f}s for lifespan"
        server = WsgiServer()
        server.run(bridge, environ_for("/"))
        assert server.status == "200 OK"
    finally:
        bridge.close(timeout=5)
    assert wait_for(lambda: threading.active_count() <= threads), threading.enumerate()
