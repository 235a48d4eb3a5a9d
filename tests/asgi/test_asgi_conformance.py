"""AsgiToWsgi, in process: the WSGI app is called directly with a built environ.

Each test is named after the conformance rule it checks (A1-A10 in
docs/conformance.md). Real servers are in test_asgi_servers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import io
import json
import logging
import os
import select
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import wsgiref.util
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar
from wsgiref.validate import validator

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from asgibridge.asgi import AsgiToWsgi
from asgibridge.errors import AppProtocolError, ClientDisconnected, LifespanError, SchedulerError
from asgibridge.sync import sync_to_async
from tests.support import ROOT
from tests.support.drivers import wsgi_call as call
from tests.support.scopes import make_environ

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WAIT = 5.0  # bound on every wait for something another thread does
TEXT = [(b"content-type", b"text/plain")]


# ----------------------------------------------------------------------- helpers


async def respond(send: Send, body: bytes = b"ok", status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": TEXT})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def lifespan_app(
    http: Callable[[Scope, Receive, Send], Awaitable[None]],
    *,
    startup: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Wrap an http handler with a lifespan handler that runs the given hooks."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if startup is not None:
                        await startup(scope["state"])
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if shutdown is not None:
                        await shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await http(scope, receive, send)

    return app


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"hello")


@pytest.fixture
def make_bridge() -> Iterator[Callable[..., AsgiToWsgi]]:
    made: list[AsgiToWsgi] = []

    def make(app: Any, **options: Any) -> AsgiToWsgi:
        bridge = AsgiToWsgi(app, **options)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.close(timeout=WAIT)


def bridge_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asgibridge.asgi" and r.levelno >= level]


def settle(bridge: AsgiToWsgi, turns: int = 50) -> None:
    """Let the bridge's loop run every ready task until it blocks (no sleeping)."""

    async def spin() -> None:
        for _ in range(turns):
            await asyncio.sleep(0)

    bridge._loop.call(spin)


def wait_for(event: threading.Event, what: str) -> None:
    assert event.wait(WAIT), f"timed out after {WAIT}s waiting for {what}"


# ------------------------------------------------------------------------ A1


def test_a1_startup_runs_before_the_first_request_on_the_same_loop(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    events: list[tuple[str, Any]] = []

    async def startup(state: dict[str, Any]) -> None:
        events.append(("startup", asyncio.get_running_loop()))
        state["ready"] = True

    async def shutdown() -> None:
        events.append(("shutdown", asyncio.get_running_loop()))

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        events.append(("request", asyncio.get_running_loop()))
        await respond(send, json.dumps(scope["state"]).encode())

    bridge = make_bridge(lifespan_app(http, startup=startup, shutdown=shutdown))
    assert events == []  # nothing runs before it is needed
    result = call(bridge)
    assert result.code == 200
    assert json.loads(result.body) == {"ready": True}
    call(bridge)
    bridge.close()
    assert [name for name, _ in events] == ["startup", "request", "request", "shutdown"]
    assert len({id(loop) for _, loop in events}) == 1


def test_a1_state_is_a_shallow_copy_per_request(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    async def startup(state: dict[str, Any]) -> None:
        state["count"] = 0
        state["shared"] = []

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        state["count"] += 1
        state["shared"].append(1)
        await respond(send, f"{state['count']} {len(state['shared'])}".encode())

    bridge = make_bridge(lifespan_app(http, startup=startup))
    assert [call(bridge).body for _ in range(3)] == [b"1 1", b"1 2", b"1 3"]
    assert bridge.state is not None
    assert bridge.state["count"] == 0


def test_a1_explicit_start_and_context_manager(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    events: list[str] = []

    async def startup(state: dict[str, Any]) -> None:
        events.append("startup")

    async def shutdown() -> None:
        events.append("shutdown")

    with AsgiToWsgi(lifespan_app(hello, startup=startup, shutdown=shutdown)) as bridge:
        assert events == ["startup"]
        assert bridge.started
        bridge.start()  # idempotent
        assert call(bridge).body == b"hello"
    assert events == ["startup", "shutdown"]
    assert not bridge.started
    with pytest.raises(SchedulerError, match="closed"):
        bridge.start()
    assert call(bridge).code == 503
    bridge.close()  # idempotent


def test_a1_concurrent_first_requests_run_startup_once(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    startups: list[int] = []

    async def startup(state: dict[str, Any]) -> None:
        startups.append(1)
        for _ in range(20):  # stay in startup for a while, without sleeping
            await asyncio.sleep(0)
        state["ok"] = True

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"yes" if scope["state"]["ok"] else b"no")

    bridge = make_bridge(lifespan_app(http, startup=startup))
    barrier = threading.Barrier(8, timeout=WAIT)
    bodies: list[bytes] = []

    def worker() -> None:
        barrier.wait()
        bodies.append(call(bridge).body)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert bodies == [b"yes"] * 8
    assert startups == [1]


def _starlette_failing_startup() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database is down")
        yield  # pragma: no cover

    return Starlette(routes=[Route("/", lambda r: PlainTextResponse("hi"))], lifespan=lifespan)


def _raising_startup_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def startup(state: dict[str, Any]) -> None:
        raise RuntimeError("database is down")

    return lifespan_app(hello, startup=startup)


@pytest.mark.parametrize(
    ("factory", "mode"),
    [
        pytest.param(_starlette_failing_startup, "auto", id="starlette-startup-failed"),
        pytest.param(_starlette_failing_startup, "on", id="starlette-startup-failed-on"),
        pytest.param(_raising_startup_app, "on", id="raw-raise-after-receive-on"),
    ],
)
def test_a1_failed_startup_answers_500_and_is_logged_once(
    make_bridge: Callable[..., AsgiToWsgi],
    caplog: pytest.LogCaptureFixture,
    factory: Callable[[], Any],
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asgibridge")
    bridge = make_bridge(factory(), lifespan=mode)
    results = [call(bridge) for _ in range(3)]
    assert [r.code for r in results] == [500, 500, 500]
    with pytest.raises(LifespanError, match="startup") as info:
        bridge.start()
    assert isinstance(info.value.__cause__, RuntimeError)
    errors = bridge_records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    record = errors[0]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    text = caplog.text
    assert text.count("RuntimeError: database is down") == 1
    assert "Traceback (most recent call last)" in text
    assert "500" in record.getMessage()


def test_a1_auto_mode_carries_on_when_the_app_has_no_lifespan(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="asgibridge")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "only http here"
        assert "state" not in scope
        await respond(send)

    bridge = make_bridge(app)
    assert call(bridge).code == 200
    assert bridge.state is None
    infos = [r for r in bridge_records(caplog, logging.INFO) if r.levelno == logging.INFO]
    assert any("does not support the lifespan protocol" in r.getMessage() for r in infos)
    assert bridge_records(caplog, logging.WARNING) == []


def test_a1_on_mode_makes_missing_lifespan_support_fatal(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # returns without answering
        await respond(send)

    bridge = make_bridge(app, lifespan="on")
    with pytest.raises(LifespanError, match="without answering"):
        bridge.start()
    assert call(bridge).code == 500
    assert len(bridge_records(caplog, logging.ERROR)) == 1


def test_a1_off_mode_sends_no_lifespan_events(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        await respond(send)

    bridge = make_bridge(app, lifespan="off")
    call(bridge)
    bridge.close()
    assert seen == ["http"]


def test_a1_startup_timeout_is_fatal(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def startup(state: dict[str, Any]) -> None:
        await asyncio.get_running_loop().create_future()  # never answers

    bridge = make_bridge(lifespan_app(hello, startup=startup), startup_timeout=0.2, lifespan="on")
    with pytest.raises(LifespanError, match="startup_timeout"):
        bridge.start()
    assert call(bridge).code == 500
    assert len(bridge_records(caplog, logging.ERROR)) == 1


# ----------------------------------------------------------------------- A12


def _bare_streaming_response() -> Any:
    """A Starlette StreamingResponse used as the whole app: it ignores scope["type"]."""
    from starlette.responses import StreamingResponse

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    return StreamingResponse(body(), media_type="text/plain")


class _FreshStreaming:
    """A new bare StreamingResponse per call (a response object can be sent only once)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _bare_streaming_response()(scope, receive, send)


async def _receive_first_until_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw middleware that calls receive() first and reads until http.disconnect."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    task = asyncio.ensure_future(receive())  # then watches for a disconnect, as many do
    try:
        await respond(send, b"read " + str(len(body)).encode())
    finally:
        task.cancel()


async def _waits_for_disconnect_first(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw middleware that blocks in receive() until it sees http.disconnect."""
    if scope["type"] == "http":
        await respond(send, b"plain")
        return
    while (await receive())["type"] != "http.disconnect":
        pass


async def _silent_for_a_long_time(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await asyncio.sleep(3600)
    await respond(send, b"plain")


@pytest.mark.parametrize(
    ("app", "body"),
    [
        pytest.param(_FreshStreaming(), b"streamed", id="bare-streaming-response"),
        pytest.param(_receive_first_until_disconnect, b"read 0", id="receive-first-middleware"),
        pytest.param(_waits_for_disconnect_first, b"plain", id="blocks-in-receive"),
        pytest.param(_silent_for_a_long_time, b"plain", id="never-calls-receive"),
    ],
)
def test_a12_auto_serves_apps_that_ignore_lifespan_without_a_long_wait(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture, app: Any, body: bytes
) -> None:
    caplog.set_level(logging.INFO, logger="asgibridge")
    bridge = make_bridge(app)  # lifespan="auto", startup_timeout=60
    started = time.monotonic()
    results = [call(bridge, validate=False) for _ in range(3)]
    elapsed = time.monotonic() - started
    assert [(r.code, r.body) for r in results] == [(200, body)] * 3
    # At most the 1 s engage wait (never-calls-receive), never startup_timeout.
    assert elapsed < 3.0, elapsed
    assert bridge.started and bridge.state is None
    assert bridge_records(caplog, logging.WARNING) == []
    infos = [r.getMessage() for r in bridge_records(caplog, logging.INFO)]
    assert sum("does not support the lifespan protocol" in m for m in infos) == 1, infos
    bridge.close(timeout=WAIT)
    assert bridge_records(caplog, logging.WARNING) == []


def test_a12_apps_that_ignore_lifespan_are_recognised_without_waiting(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    """The two cases the issue names are told at once, not after the 1 s engage wait."""
    for app in (_FreshStreaming(), _waits_for_disconnect_first):
        bridge = make_bridge(app)
        started = time.monotonic()
        bridge.start()
        assert time.monotonic() - started < 0.5
        assert bridge.started


@pytest.mark.parametrize("app", [_FreshStreaming(), _waits_for_disconnect_first])
def test_a12_on_mode_makes_an_app_that_ignores_lifespan_fatal(
    make_bridge: Callable[..., AsgiToWsgi], app: Any
) -> None:
    bridge = make_bridge(app, lifespan="on")
    with pytest.raises(LifespanError, match="does not support lifespan"):
        bridge.start()
    assert call(bridge, validate=False).code == 500


def test_a12_startup_failed_stays_fatal_in_auto(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    bridge = make_bridge(_starlette_failing_startup())
    with pytest.raises(LifespanError, match="startup failed"):
        bridge.start()
    assert call(bridge).code == 500


def test_a12_raise_after_receive_is_served_without_lifespan_and_warned(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    bridge = make_bridge(_raising_startup_app())
    assert call(bridge).code == 200
    [record] = bridge_records(caplog, logging.WARNING)
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert bridge_records(caplog, logging.ERROR) == []


def test_a12_unanswered_startup_is_not_fatal_in_auto(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def startup(state: dict[str, Any]) -> None:
        await asyncio.get_running_loop().create_future()  # never answers

    bridge = make_bridge(lifespan_app(hello, startup=startup), startup_timeout=0.3)
    assert call(bridge).code == 200
    [record] = bridge_records(caplog, logging.WARNING)
    assert "startup_timeout=0.3s" in record.getMessage()


def test_a1_close_waits_for_running_requests_then_shuts_down(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    order: list[str] = []
    background_started = threading.Event()

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        background_started.set()
        for _ in range(20):
            await asyncio.sleep(0)
        order.append("background done")

    async def shutdown() -> None:
        order.append("shutdown")

    bridge = make_bridge(lifespan_app(http, shutdown=shutdown))
    call(bridge)
    wait_for(background_started, "background work")
    bridge.close()
    assert order == ["background done", "shutdown"]


def test_a1_failed_shutdown_is_logged(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def shutdown() -> None:
        raise RuntimeError("cannot flush")

    bridge = make_bridge(lifespan_app(hello, shutdown=shutdown))
    bridge.start()
    bridge.close()
    errors = bridge_records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "shutdown" in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError


def test_a1_shutdown_runs_at_interpreter_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import io, sys, wsgiref.util
        from asgibridge.asgi import AsgiToWsgi

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    print(message["type"], flush=True)
                    await send({"type": message["type"] + ".complete"})
                    if message["type"] == "lifespan.shutdown":
                        return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        wsgi_app = AsgiToWsgi(app)
        environ = {}
        wsgiref.util.setup_testing_defaults(environ)
        body = b"".join(wsgi_app(environ, lambda status, headers, exc_info=None: None))
        print("request", body.decode(), flush=True)
        # no close(): the atexit hook must run lifespan shutdown
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["lifespan.startup", "request", "ok", "lifespan.shutdown"]
    assert "Task was destroyed" not in out.stderr


# ------------------------------------------------------------------------ A2


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "asgibridge-asgi"]


def test_a2_loop_and_thread_start_lazily(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    before = len(_loop_threads())
    bridge = make_bridge(hello)
    assert len(_loop_threads()) == before
    call(bridge)
    assert len(_loop_threads()) == before + 1
    bridge.close()
    assert len(_loop_threads()) == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a2_forked_child_gets_a_fresh_loop_and_lifespan(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    async def startup(state: dict[str, Any]) -> None:
        state["pid"] = os.getpid()
        state["loop"] = id(asyncio.get_running_loop())

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        body = {"startup_pid": state["pid"], "pid": os.getpid(), "loop": state["loop"]}
        body["same_loop"] = id(asyncio.get_running_loop()) == state["loop"]
        await respond(send, json.dumps(body).encode())

    bridge = make_bridge(lifespan_app(http, startup=startup))
    parent = json.loads(call(bridge).body)  # the parent's loop and lifespan are running
    assert parent["startup_pid"] == os.getpid()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            body = call(bridge).body
            os.write(write_end, body)
            bridge.close(timeout=WAIT)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20.0)
        assert ready, "the forked child did not answer within 20s"
        child = json.loads(os.read(read_end, 65536))
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child["pid"] == pid
    assert child["startup_pid"] == pid  # startup ran again, in the child
    assert child["same_loop"] is True
    # The parent is unaffected.
    assert json.loads(call(bridge).body)["startup_pid"] == os.getpid()


# ------------------------------------------------------------------------ A3


class TrickleInput:
    """A chunked request body that arrives a few bytes per read, like a socket."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if size is None or size < 0:
            return self._data.read()
        return self._data.read(min(size, self._piece))

    def readline(self, size: int = -1) -> bytes:  # pragma: no cover - protocol only
        return self._data.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:  # pragma: no cover
        return self._data.readlines(hint)

    def __iter__(self) -> Iterator[bytes]:  # pragma: no cover
        return iter(self._data)


async def digest_app(scope: Scope, receive: Receive, send: Send) -> None:
    body, messages = await read_body(receive)
    sizes = [len(m.get("body", b"")) for m in messages]
    answer = {
        "sha": hashlib.sha256(body).hexdigest(),
        "len": len(body),
        "messages": len(messages),
        "max": max(sizes),
        "last": messages[-1]["type"],
    }
    await respond(send, json.dumps(answer).encode())


def test_a3_chunked_body_reaches_the_app_whole(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    data = os.urandom(300_000)
    bridge = make_bridge(digest_app, lifespan="off")
    environ = make_environ("POST", body=data, chunked=True, stream=TrickleInput(data))
    answer = json.loads(call(bridge, environ).body)
    assert answer["sha"] == hashlib.sha256(data).hexdigest()
    assert answer["len"] == len(data)
    assert answer["last"] == "http.request"


def test_a3_small_chunked_body_arrives_in_one_message(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    data = b"x" * 5000
    bridge = make_bridge(digest_app, lifespan="off")
    environ = make_environ("POST", body=data, chunked=True, stream=TrickleInput(data))
    answer = json.loads(call(bridge, environ).body)
    assert (answer["len"], answer["messages"]) == (5000, 1)


def test_a3_no_length_and_no_terminator_means_an_empty_body(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    stream = TrickleInput(b"must not be read")
    bridge = make_bridge(digest_app, lifespan="off")
    environ = make_environ("POST")
    environ["wsgi.input"] = stream
    answer = json.loads(call(bridge, environ).body)
    assert (answer["len"], answer["messages"]) == (0, 1)
    assert stream.reads == 0


def test_a3_get_without_transfer_encoding_is_not_read(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    # gunicorn sets wsgi.input_terminated on every request, bodiless GETs included.
    bridge = make_bridge(digest_app, lifespan="off")
    stream = TrickleInput(b"")
    environ = make_environ("GET", body=b"", chunked=True, stream=stream)
    assert json.loads(call(bridge, environ).body)["len"] == 0
    assert stream.reads == 0
    chunked_get = make_environ(
        "GET", body=b"q" * 10, chunked=True, HTTP_TRANSFER_ENCODING="chunked"
    )
    assert json.loads(call(bridge, chunked_get).body)["len"] == 10


def test_a3_large_body_streams_in_bounded_chunks(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    data = os.urandom(1_000_000)
    bridge = make_bridge(digest_app, lifespan="off", read_chunk_size=16384)
    answer = json.loads(call(bridge, make_environ("POST", body=data)).body)
    assert answer["sha"] == hashlib.sha256(data).hexdigest()
    assert answer["max"] <= 16384
    assert answer["messages"] >= len(data) // 16384


def test_a3_truncated_upload_is_a_disconnect_not_a_short_body(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    bridge = make_bridge(digest_app, lifespan="off", read_chunk_size=16384)
    environ = make_environ("POST", body=b"y" * 50_000)
    environ["CONTENT_LENGTH"] = "200000"  # the client promised more than it sent
    answer = json.loads(call(bridge, environ, validate=False).body)
    assert answer["last"] == "http.disconnect"


# ------------------------------------------------------------------------ A4


def test_a4_early_close_cancels_the_task_and_runs_finally(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    finally_ran = threading.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            finally_ran.set()

    bridge = make_bridge(app, lifespan="off")
    iterable = validator(bridge)(make_environ(), lambda s, h, e=None: lambda d: None)
    chunks = iter(iterable)
    assert [next(chunks), next(chunks)] == [b"tick", b"tick"]
    iterable.close()  # type: ignore[attr-defined]
    wait_for(finally_ran, "the app's finally block")
    assert outcome == ["cancelled"]


def test_a4_send_after_the_client_left_raises_oserror(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    raised: list[BaseException] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except asyncio.CancelledError:
            try:
                await send({"type": "http.response.body", "body": b"late"})
            except OSError as exc:
                raised.append(exc)
            done.set()

    bridge = make_bridge(app, lifespan="off")
    iterable = bridge(make_environ(), lambda s, h, e=None: lambda d: None)
    next(iter(iterable))
    iterable.close()  # type: ignore[attr-defined]
    wait_for(done, "the app's late send")
    assert len(raised) == 1 and isinstance(raised[0], ClientDisconnected)


# ------------------------------------------------------------------------ A5


def test_a5_receive_blocks_until_the_response_is_done_then_disconnects(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    order: list[str] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body, _ = await read_body(receive)

        async def listen() -> None:
            message = await receive()
            order.append(f"listener: {message['type']}")

        listener = asyncio.create_task(listen())
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for i in range(3):
            await send({"type": "http.response.body", "body": body, "more_body": True})
            for _ in range(5):
                await asyncio.sleep(0)  # give the listener every chance to return early
            order.append(f"sent {i}")
        await send({"type": "http.response.body", "body": b"end"})
        await listener
        order.append("done")
        done.set()

    bridge = make_bridge(app, lifespan="off")
    result = call(bridge, make_environ("POST", body=b"ab"))
    assert result.body == b"abababend"
    wait_for(done, "the app to finish after its response")
    assert order == ["sent 0", "sent 1", "sent 2", "listener: http.disconnect", "done"]


def test_a5_receive_returns_disconnect_when_the_client_leaves(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    heard = threading.Event()
    messages: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

        async def listen() -> None:
            messages.append((await receive())["type"])
            heard.set()

        asyncio.get_running_loop().create_task(listen())
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        while True:
            await send({"type": "http.response.body", "body": b".", "more_body": True})

    bridge = make_bridge(app, lifespan="off")
    iterable = bridge(make_environ(), lambda s, h, e=None: lambda d: None)
    next(iter(iterable))
    assert messages == []
    iterable.close()  # type: ignore[attr-defined]
    wait_for(heard, "http.disconnect")
    assert messages == ["http.disconnect"]


def test_a5_a_cancelled_receive_does_not_break_later_ones(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    # Starlette's Request.is_disconnected() calls receive() in a cancelled scope.
    late: list[str] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

        async def probe_receive() -> Message:
            return await receive()

        probe = asyncio.create_task(probe_receive())
        await asyncio.sleep(0)
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe

        async def listen() -> None:
            late.append((await receive())["type"])
            done.set()

        keep.append(asyncio.create_task(listen()))
        await respond(send)

    keep: list[asyncio.Task[None]] = []
    assert call(make_bridge(app, lifespan="off")).code == 200
    wait_for(done, "receive() after a cancelled one")
    assert late == ["http.disconnect"]


# ------------------------------------------------------------------------ A6


def test_a6_exception_before_the_response_is_a_logged_500(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("kaboom")

    bridge = make_bridge(app, lifespan="off")
    result = call(bridge, make_environ(path="/boom"))
    assert result.code == 500
    assert result.body == b"Internal Server Error"
    [record] = bridge_records(caplog, logging.ERROR)
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert "GET /boom" in record.getMessage()
    assert "Traceback (most recent call last)" in caplog.text
    assert "ValueError: kaboom" in caplog.text


def test_a6_exception_after_start_but_before_any_body_is_still_a_500(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        raise ValueError("late kaboom")

    bridge = make_bridge(app, lifespan="off")
    assert call(bridge).code == 500
    assert len(bridge_records(caplog, logging.ERROR)) == 1


def test_a6_exception_mid_body_aborts_the_response(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("mid-body kaboom")

    bridge = make_bridge(app, lifespan="off")
    with pytest.raises(ValueError, match="mid-body kaboom"):
        call(bridge)
    # Re-raised to the server, which logs it: the bridge must not log it too (defect 7).
    assert bridge_records(caplog, logging.ERROR) == []


def test_a6_exception_mid_body_is_logged_once_when_the_server_closes_first(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    """If the server closes the iterable before reaching the error, the bridge logs it."""
    raised = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raised.set()
        raise ValueError("unseen kaboom")

    bridge = make_bridge(app, lifespan="off")
    iterable = bridge(make_environ(), lambda status, headers, exc_info=None: None)
    assert next(iter(iterable)) == b"partial"
    wait_for(raised, "the app to raise")
    settle(bridge)
    iterable.close()  # type: ignore[attr-defined]
    [record] = bridge_records(caplog, logging.ERROR)
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert caplog.text.count("ValueError: unseen kaboom") == 1


def test_a6_exception_before_the_body_passes_exc_info_to_start_response(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    """Defect 8: the 500 goes out with exc_info, as PEP 3333 allows for error pages."""
    got: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("missing")

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        got.append((status, exc_info))
        return lambda data: None

    body = make_bridge(app, lifespan="off")(make_environ(), start_response)
    assert b"".join(body) == b"Internal Server Error"
    [(status, exc_info)] = got
    assert status.startswith("500 ")
    assert exc_info is not None and exc_info[0] is KeyError and exc_info[2] is not None


def test_a6_werkzeug_and_httpx_test_clients_reraise_the_app_error(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    import httpx
    from werkzeug.test import Client

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("through the test client")

    bridge = make_bridge(app, lifespan="off")
    with pytest.raises(LookupError, match="through the test client"):
        Client(bridge).get("/")
    transport = httpx.WSGITransport(app=bridge)
    with httpx.Client(transport=transport, base_url="http://test") as client:
        with pytest.raises(LookupError, match="through the test client"):
            client.get("/")
    quiet = httpx.WSGITransport(app=bridge, raise_app_exceptions=False)
    with httpx.Client(transport=quiet, base_url="http://test") as client:
        assert client.get("/").status_code == 500


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        pytest.param([], "never sent http.response.start", id="no-response"),
        pytest.param(
            [{"type": "http.response.start", "status": 200, "headers": TEXT}],
            "more_body=False",
            id="no-final-body",
        ),
        pytest.param(
            [{"type": "http.response.body", "body": b"x"}],
            "before 'http.response.start'",
            id="body-first",
        ),
        pytest.param(
            [{"type": "http.response.start", "status": "200", "headers": TEXT}],
            "must be an int",
            id="status-str",
        ),
        pytest.param(
            [{"type": "http.response.start", "status": 200, "headers": TEXT, "trailers": True}],
            "trailers",
            id="trailers",
        ),
        pytest.param([{"type": "websocket.send"}], "unknown ASGI message type", id="unknown"),
    ],
)
def test_a6_protocol_errors_are_logged_500s(
    make_bridge: Callable[..., AsgiToWsgi],
    caplog: pytest.LogCaptureFixture,
    messages: list[Message],
    error: str,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    bridge = make_bridge(app, lifespan="off")
    assert call(bridge).code == 500
    [record] = bridge_records(caplog, logging.ERROR)
    assert record.exc_info is not None and record.exc_info[0] is AppProtocolError
    assert error in str(record.exc_info[1])


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("content-type", "text/plain")], id="str-not-bytes"),
        pytest.param([(b"x-bad", b"a\r\nSet-Cookie: evil=1")], id="header-injection"),
        pytest.param([(b"content-type",)], id="not-a-pair"),
    ],
)
def test_a6_unusable_headers_are_a_logged_500(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture, headers: Any
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"never seen"})

    bridge = make_bridge(app, lifespan="off")
    result = call(bridge)
    assert result.code == 500
    assert b"never seen" not in result.body
    assert len(bridge_records(caplog, logging.ERROR)) == 1


def test_a6_hop_by_hop_headers_are_dropped(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [*TEXT, (b"connection", b"close"), (b"x-kept", b"\xe9")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    result = call(make_bridge(app, lifespan="off"))  # wsgiref.validate forbids hop-by-hop
    assert result.status == "201 Created"
    assert result.header("connection") is None
    assert result.header("x-kept") == "\xe9"  # latin-1 both ways


# ------------------------------------------------------------------------ A7


def test_a7_scope_is_complete_and_correct(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    scopes: list[Scope] = []

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    bridge = make_bridge(lifespan_app(http))
    environ = make_environ(
        "PUT",
        "/caf\xc3\xa9/x",  # UTF-8 bytes as latin-1, as PEP 3333 wants
        body=b"{}",
        SCRIPT_NAME="/app",
        QUERY_STRING="a=1&b=%20",
        CONTENT_TYPE="application/json",
        HTTP_X_FORWARDED_FOR="10.0.0.1",
        HTTP_ACCEPT="*/*",
        REMOTE_ADDR="10.1.2.3",
        REMOTE_PORT="4567",
        SERVER_NAME="example.org",
        SERVER_PORT="8443",
        **{"wsgi.url_scheme": "https"},
    )
    call(bridge, environ)
    [scope] = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"].startswith("2.")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "PUT"
    assert scope["scheme"] == "https"
    assert scope["root_path"] == "/app"
    assert scope["path"] == "/app/café/x"
    assert scope["raw_path"] == b"/app/caf%C3%A9/x"
    assert scope["query_string"] == b"a=1&b=%20"
    assert scope["client"] == ("10.1.2.3", 4567)
    assert scope["server"] == ("example.org", 8443)
    headers = dict(scope["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"2"
    assert headers[b"x-forwarded-for"] == b"10.0.0.1"
    assert all(name == name.lower() and isinstance(name, bytes) for name, _ in scope["headers"])
    assert "http.response.pathsend" in scope["extensions"]
    assert scope["state"] == {}


def test_a7_root_path_can_be_left_empty(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    bridge = make_bridge(app, lifespan="off", root_path_from_script_name=False)
    call(bridge, make_environ(path="/x", SCRIPT_NAME="/app"))
    assert (scopes[0]["root_path"], scopes[0]["path"]) == ("", "/app/x")


# ------------------------------------------------------------------------ A8


def test_a8_send_waits_while_the_buffer_is_full(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    sent: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for i in range(40):
            await send({"type": "http.response.body", "body": b"%d," % i, "more_body": True})
            sent.append(i)
        await send({"type": "http.response.body", "body": b"end"})

    bridge = make_bridge(app, lifespan="off", send_buffer=4)
    iterable = validator(bridge)(make_environ(), lambda s, h, e=None: lambda d: None)
    try:
        chunks = iter(iterable)
        first = next(chunks)
        settle(bridge)  # the app runs until send() blocks: nothing else can free it
        # send_buffer=4 chunks wait (the 4th send() is the one blocked), and the
        # WSGI side holds one more; which one depends on who ran first.
        assert len(sent) in (3, 4), sent
        rest = b"".join(chunks)
    finally:
        iterable.close()  # type: ignore[attr-defined]
    assert first + rest == b"".join(b"%d," % i for i in range(40)) + b"end"
    assert sent == list(range(40))


# ------------------------------------------------------------------------ A9


def test_a9_background_work_runs_after_the_response_is_complete(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    release = threading.Event()
    finished = threading.Event()

    async def background() -> None:
        await asyncio.to_thread(release.wait, WAIT)
        finished.set()

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("sent", background=BackgroundTask(background))

    bridge = make_bridge(Starlette(routes=[Route("/", endpoint)]))
    result = call(bridge)  # returns although the background task is still waiting
    assert result.body == b"sent"
    assert not finished.is_set()
    release.set()
    wait_for(finished, "the background task")


def test_a9_background_timeout_cancels_and_logs(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture
) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        try:
            await asyncio.get_running_loop().create_future()  # background work that never ends
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bridge = make_bridge(app, lifespan="off", background_timeout=0.1)
    assert call(bridge).code == 200
    wait_for(cancelled, "the background cancellation")
    [record] = bridge_records(caplog, logging.WARNING)
    assert "background_timeout" in record.getMessage()


# ------------------------------------------------------------------------ A10


class RecordingFileWrapper(wsgiref.util.FileWrapper):
    made: ClassVar[list[RecordingFileWrapper]] = []

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        super().__init__(filelike, blksize)
        RecordingFileWrapper.made.append(self)


def _pathsend_app(path: Path) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


def test_a10_pathsend_is_served_through_the_file_wrapper(
    make_bridge: Callable[..., AsgiToWsgi], tmp_path: Path
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(os.urandom(200_000))
    bridge = make_bridge(_pathsend_app(target), lifespan="off")
    RecordingFileWrapper.made.clear()
    environ = make_environ("GET", "/", **{"wsgi.file_wrapper": RecordingFileWrapper})
    iterable = bridge(environ, lambda s, h, e=None: lambda d: None)
    assert isinstance(iterable, RecordingFileWrapper)
    body = b"".join(iterable)
    iterable.close()
    assert body == target.read_bytes()
    assert iterable.filelike.closed


def test_a10_pathsend_without_a_file_wrapper_is_read_in_chunks(
    make_bridge: Callable[..., AsgiToWsgi], tmp_path: Path
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(os.urandom(100_000))
    bridge = make_bridge(_pathsend_app(target), lifespan="off", read_chunk_size=8192)
    environ = make_environ()
    assert "wsgi.file_wrapper" not in environ
    chunks: list[bytes] = []
    iterable = validator(bridge)(environ, lambda s, h, e=None: lambda d: None)
    try:
        chunks.extend(iterable)
    finally:
        iterable.close()  # type: ignore[attr-defined]
    assert b"".join(chunks) == target.read_bytes()
    assert max(len(c) for c in chunks) <= 8192


def test_a10_starlette_file_response_uses_pathsend(
    make_bridge: Callable[..., AsgiToWsgi], tmp_path: Path
) -> None:
    target = tmp_path / "page.txt"
    target.write_text("from disk")
    app = Starlette(routes=[Route("/", lambda r: FileResponse(target))])
    RecordingFileWrapper.made.clear()
    result = call(
        make_bridge(app), make_environ("GET", "/", **{"wsgi.file_wrapper": RecordingFileWrapper})
    )
    assert result.body == b"from disk"
    assert len(RecordingFileWrapper.made) == 1


def test_a10_pathsend_of_a_missing_file_is_a_logged_500(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    bridge = make_bridge(_pathsend_app(tmp_path / "missing"), lifespan="off")
    assert call(bridge).code == 500
    [record] = bridge_records(caplog, logging.ERROR)
    assert record.exc_info is not None and record.exc_info[0] is FileNotFoundError


def test_a10_trailers_are_not_advertised(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await respond(send)

    call(make_bridge(app, lifespan="off"))
    assert "http.response.trailers" not in seen[0]["extensions"]


# ----------------------------------------------------------------------- A11


def _start_with(headers: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"never seen"})

    return app


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(b"x:a", id="interior-colon"),
        pytest.param(b"x a", id="space"),
        pytest.param(b" x", id="leading-space"),
        pytest.param(b"x\x00", id="nul"),
        pytest.param(b"x\r\nset-cookie: evil=1", id="crlf"),
        pytest.param(b"", id="empty"),
        pytest.param(b"x-caf\xe9", id="non-ascii"),
        pytest.param(b"x(y)", id="separator"),
    ],
)
def test_a11_header_names_must_be_tokens(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture, name: bytes
) -> None:
    bridge = make_bridge(_start_with([*TEXT, (name, b"v")]), lifespan="off")
    result = call(bridge)
    assert result.code == 500
    assert b"never seen" not in result.body
    assert all(k.lower() == "content-type" or "x" not in k for k, _ in result.headers)
    [record] = bridge_records(caplog, logging.ERROR)
    assert "token" in str(record.exc_info[1] if record.exc_info else "")


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x08", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f"]
)
def test_a11_header_values_may_hold_no_control_character(
    make_bridge: Callable[..., AsgiToWsgi], caplog: pytest.LogCaptureFixture, char: str
) -> None:
    value = b"a" + char.encode("latin-1") + b"b"
    bridge = make_bridge(_start_with([*TEXT, (b"x-bad", value)]), lifespan="off")
    result = call(bridge)
    assert result.code == 500
    assert result.header("x-bad") is None
    [record] = bridge_records(caplog, logging.ERROR)
    assert "control character" in str(record.exc_info[1] if record.exc_info else "")


def test_a11_header_values_are_stripped_and_tabs_kept(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    headers = [*TEXT, (b"set-cookie", b" a=b; Path=/"), (b"x-t", b"\t1\t2 \t"), (b"x-e", b"\xe9 ")]
    # wsgiref.validate refuses the tab that RFC 9110 allows inside a value.
    result = call(make_bridge(_start_with(headers), lifespan="off"), validate=False)
    assert result.code == 200
    assert result.header("set-cookie") == "a=b; Path=/"
    assert result.header("x-t") == "1\t2"
    assert result.header("x-e") == "\xe9"


# ------------------------------------------------------------- ASGI 2 apps


class _Asgi2Class:
    """An ASGI 2 ("double-callable") app: instantiated with the scope, then awaited."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.scope["state"]["from"] = "asgi2 startup"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, _ = await read_body(receive)
        text = f"asgi2 {self.scope['path']} {len(body)} {self.scope['state'].get('from')}"
        await respond(send, text.encode())


def _asgi2_function(scope: Scope) -> Callable[[Receive, Send], Awaitable[None]]:
    async def instance(receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, b"asgi2 function")

    return instance


def test_asgi2_double_callable_class_is_served_with_its_lifespan(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    bridge = make_bridge(_Asgi2Class)
    result = call(bridge, make_environ("POST", "/x", body=b"abc"))
    assert (result.code, result.body) == (200, b"asgi2 /x 3 asgi2 startup")
    assert bridge.state == {"from": "asgi2 startup"}
    assert bridge.app is _Asgi2Class


def test_asgi2_double_callable_function_is_served(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    bridge = make_bridge(_asgi2_function, lifespan="on")
    assert call(bridge).body == b"asgi2 function"


def test_asgi3_callables_are_not_mistaken_for_asgi2(make_bridge: Callable[..., AsgiToWsgi]) -> None:
    def sync_def_returning_a_coroutine(scope: Scope, receive: Receive, send: Send) -> Any:
        return hello(scope, receive, send)

    def star_args(*args: Any) -> Any:
        return hello(*args)

    class Instance:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await hello(scope, receive, send)

    for app in (hello, sync_def_returning_a_coroutine, star_args, Instance()):
        assert call(make_bridge(app, lifespan="off")).body == b"hello", app


# ------------------------------------------------------------ wsgiref.validate


def _streaming(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
    async def run() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return run()


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body, _ = await read_body(receive)
    await respond(send, body)


async def _empty(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body"})


async def _raises(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("validate me")


@pytest.mark.parametrize(
    ("app", "environ", "code", "body"),
    [
        pytest.param(hello, make_environ(), 200, b"hello", id="get"),
        pytest.param(hello, make_environ("HEAD"), 200, b"hello", id="head"),
        pytest.param(_echo, make_environ("POST", body=b"small"), 200, b"small", id="post-small"),
        pytest.param(
            _echo, make_environ("POST", body=b"L" * 300_000), 200, b"L" * 300_000, id="post-large"
        ),
        pytest.param(
            _echo,
            make_environ("POST", body=b"c" * 70_000, chunked=True),
            200,
            b"c" * 70_000,
            id="chunked",
        ),
        pytest.param(_streaming, make_environ(), 200, b"01234", id="streaming"),
        pytest.param(_empty, make_environ(), 204, b"", id="empty-body"),
        pytest.param(_raises, make_environ(), 500, b"Internal Server Error", id="app-error"),
    ],
)
def test_wsgiref_validate_passes_for_every_request_type(
    make_bridge: Callable[..., AsgiToWsgi],
    app: Any,
    environ: dict[str, Any],
    code: int,
    body: bytes,
) -> None:
    result = call(make_bridge(app, lifespan="off"), environ, validate=True)
    assert (result.code, result.body) == (code, body)


def test_wsgiref_validate_passes_for_pathsend_and_failed_startup(
    make_bridge: Callable[..., AsgiToWsgi], tmp_path: Path
) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"file body")
    assert call(make_bridge(_pathsend_app(target), lifespan="off")).body == b"file body"
    assert call(make_bridge(_raising_startup_app(), lifespan="on")).code == 500


@pytest.mark.parametrize(
    "length",
    [
        pytest.param("nope", id="word"),
        pytest.param("1_0", id="underscore"),
        pytest.param("+5", id="plus"),
        pytest.param("-1", id="minus"),
        pytest.param(" 5", id="leading-space"),
        pytest.param("5 ", id="trailing-space"),
        pytest.param("0x10", id="hex"),
        pytest.param("\u0665", id="arabic-indic-digit"),
        pytest.param("\xb2", id="superscript-two"),
        pytest.param("\u20ac", id="not-latin-1"),
        pytest.param("1e3", id="exponent"),
    ],
)
def test_a13_content_length_must_be_ascii_digits(
    make_bridge: Callable[..., AsgiToWsgi], length: str
) -> None:
    called: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(True)
        await respond(send)

    environ = make_environ("POST", body=b"0123456789", CONTENT_LENGTH=length)
    result = call(make_bridge(app, lifespan="off"), environ, validate=False)
    assert result.code == 400
    assert result.body.startswith(b"invalid Content-Length ")
    assert b"ASCII digits only" in result.body
    assert called == []


@pytest.mark.parametrize(("length", "size"), [("10", 10), ("0010", 10), ("0", 0), ("", 0)])
def test_a13_plain_digits_are_read_exactly(
    make_bridge: Callable[..., AsgiToWsgi], length: str, size: int
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body, _ = await read_body(receive)
        await respond(send, body)

    environ = make_environ("POST", body=b"0123456789abcdef", CONTENT_LENGTH=length)
    result = call(make_bridge(app, lifespan="off"), environ, validate=False)
    assert (result.code, result.body) == (200, b"0123456789abcdef"[:size])


def test_a13_non_latin1_environ_text_never_raises_unicode_errors(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    """A broken server's non-latin-1 CONTENT_TYPE / QUERY_STRING reach the app, not a crash."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await respond(send)

    environ = make_environ(
        "POST", body=b"", CONTENT_TYPE="text/\u20ac", QUERY_STRING="q=\u20ac\ud800"
    )
    result = call(make_bridge(app, lifespan="off"), environ, validate=False)
    assert result.code == 200
    assert (b"content-type", "text/\u20ac".encode()) in seen[0]["headers"]


# ------------------------------------------------------------------ scheduling


def test_thread_sensitive_calls_run_on_the_request_thread(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    background_thread: list[int] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ident = await sync_to_async(threading.get_ident)()
        await respond(send, str(ident).encode())
        # After the response the request thread has moved on: this must not hang.
        background_thread.append(await sync_to_async(threading.get_ident)())
        done.set()

    bridge = make_bridge(app, lifespan="off")
    assert call(bridge).body == str(threading.get_ident()).encode()
    wait_for(done, "a thread-sensitive call after the response")
    assert background_thread[0] != threading.get_ident()


def test_context_variables_flow_from_the_wsgi_thread_into_the_app(
    make_bridge: Callable[..., AsgiToWsgi],
) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, var.get().encode())

    bridge = make_bridge(app, lifespan="off")
    token = var.set("req-42")
    try:
        assert call(bridge).body == b"req-42"
    finally:
        var.reset(token)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"lifespan": "maybe"}, ValueError, id="lifespan"),
        pytest.param({"send_buffer": 0}, ValueError, id="send_buffer"),
        pytest.param({"read_chunk_size": -1}, ValueError, id="read_chunk_size"),
        pytest.param({"startup_timeout": 0}, ValueError, id="startup_timeout"),
        pytest.param({"background_timeout": "1"}, ValueError, id="background_timeout"),
        pytest.param({"loop": object()}, TypeError, id="loop"),
    ],
)
def test_options_are_checked(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        AsgiToWsgi(hello, **options)


def test_the_fastapi_example_serves_in_process() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from examples.fastapi_app import wsgi_app
    finally:
        sys.path.pop(0)
    try:
        result = call(wsgi_app, make_environ(path="/items/7"))
        assert result.code == 200
        assert json.loads(result.body)["item_id"] == 7
    finally:
        wsgi_app.close()


# ------------------------------------------------------------- response phases


def test_a4_a6_exchange_phases_follow_the_table(
    make_bridge: Callable[..., AsgiToWsgi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each phase change a request makes is in the Exchange's transition table, in order."""
    import asgibridge.asgi
    from asgibridge._asgi import TRANSITIONS, Exchange, Phase

    taken: list[tuple[Phase | None, Phase]] = []
    slot = Exchange.__dict__["phase"]  # the slot's descriptor: the real storage

    class Recording(Exchange):
        __slots__ = ()

        @property  # type: ignore[override]
        def phase(self) -> Phase:
            value: Phase = slot.__get__(self, Exchange)
            return value

        @phase.setter
        def phase(self, value: Phase) -> None:
            try:
                before = slot.__get__(self, Exchange)
            except AttributeError:
                before = None
            taken.append((before, value))
            slot.__set__(self, value)

    monkeypatch.setattr(asgibridge.asgi, "Exchange", Recording)
    cancelled = threading.Event()

    async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails_before_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        raise RuntimeError("boom before the body")

    async def fails_mid_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        raise RuntimeError("boom mid-body")

    def walk(app: Any, read: Callable[[AsgiToWsgi], None]) -> list[tuple[Phase | None, Phase]]:
        taken.clear()
        bridge = make_bridge(app, lifespan="off")
        read(bridge)
        settle(bridge)  # the loop side may still be finishing its last send()
        first, *rest = taken
        assert first == (None, Phase.NEW)
        assert [t for t in rest if t not in TRANSITIONS] == [], rest
        return rest

    def whole(bridge: AsgiToWsgi) -> None:
        result = call(bridge, make_environ())
        assert result.code in (200, 500)

    def leave_after_two(bridge: AsgiToWsgi) -> None:
        iterable = bridge(make_environ(), lambda s, h, e=None: lambda d: None)
        chunks = iter(iterable)
        assert [next(chunks), next(chunks)] == [b"tick", b"tick"]
        iterable.close()  # type: ignore[attr-defined]
        wait_for(cancelled, "the app's cancellation")

    def abort_mid_body(bridge: AsgiToWsgi) -> None:
        iterable = bridge(make_environ(), lambda s, h, e=None: lambda d: None)
        with pytest.raises(RuntimeError, match="boom mid-body"):
            list(iterable)

    new, started, streaming = Phase.NEW, Phase.STARTED, Phase.STREAMING
    complete, gone = Phase.COMPLETE, Phase.GONE
    assert walk(hello, whole) == [(new, started), (started, complete)]
    assert walk(streamed, whole) == [
        (new, started),
        (started, streaming),
        (streaming, complete),
    ]
    assert walk(endless, leave_after_two) == [
        (new, started),
        (started, streaming),
        (streaming, gone),
    ]
    # An app error does not move the phase; the phase says how it is reported (A6).
    assert walk(fails_before_body, whole) == [(new, started)]
    assert walk(fails_mid_body, abort_mid_body) == [(new, started), (started, streaming)]
