"""WsgiToAsgi conformance, in-process: rules C1-C21 of docs/conformance.md.

Each test drives the bridge with hand-written ``receive``/``send`` callables
and is named after the rule it covers. Every test runs in both executors
(thread and greenlet) and on both event loops (asyncio and trio). Inner apps
are wrapped in ``wsgiref.validate.validator`` wherever they are valid WSGI
apps by its standards.
"""

from __future__ import annotations

import contextvars
import functools
import io
import json
import logging
import os
import sys
import threading
import time
import wsgiref.validate
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgibridge.errors import AppProtocolError, ClientDisconnected, ServerProtocolError
from asgibridge.sync import async_to_sync
from asgibridge.wsgi import WsgiToAsgi
from tests.support.drivers import AsgiResult as Result
from tests.support.drivers import asgi_call as call
from tests.support.drivers import asgi_request as request
from tests.support.logs import wait_for
from tests.support.scopes import make_scope

Message = dict[str, Any]
StartResponse = Callable[..., Any]
Environ = dict[str, Any]

# ------------------------------------------------------------------------ fixtures


class Bridges:
    """Makes bridges for one test and stops their threads afterwards."""

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.made: list[WsgiToAsgi] = []

    def __call__(self, app: Any, **options: Any) -> WsgiToAsgi:
        options.setdefault("executor", self.executor)
        bridge = WsgiToAsgi(app, **options)
        self.made.append(bridge)
        return bridge

    def close(self) -> None:
        for bridge in self.made:
            bridge.close()


@pytest.fixture
def make(executor: str) -> Iterator[Bridges]:
    bridges = Bridges(executor)
    yield bridges
    bridges.close()


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def environ_echo(*keys: str) -> Callable[[Environ, StartResponse], list[bytes]]:
    """An app that answers with the chosen environ values as JSON (latin-1 safe)."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        data = {k: environ.get(k) for k in keys}
        body = json.dumps(data).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


wait_until = functools.partial(wait_for, timeout=5.0, step=0.005)


def assert_workers_idle(bridge: WsgiToAsgi) -> None:
    if bridge.executor == "thread" and bridge._adm is not None:
        pool = bridge.pool
        assert wait_until(lambda: pool.busy == 0), f"{pool.busy} workers still busy"


# ---------------------------------------------------------------- C1 SCRIPT_NAME


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        pytest.param("", "/a/b", "", "/a/b", id="no-root"),
        pytest.param("/app", "/app/a/b", "/app", "/a/b", id="root-prefix-removed"),
        pytest.param("/app", "/app", "/app", "", id="root-only"),
        pytest.param("/app", "/application", "/app", "/application", id="not-a-segment"),
        pytest.param("/app", "/other/x", "/app", "/other/x", id="path-outside-root"),
    ],
)
def test_c1_script_name_and_path_info(
    make: Bridges,
    backend: str,
    root_path: str,
    path: str,
    script_name: str,
    path_info: str,
) -> None:
    bridge = make(wsgiref.validate.validator(environ_echo("SCRIPT_NAME", "PATH_INFO")))
    scope = make_scope(root_path=root_path, path=path, raw_path=path.encode())
    result = request(backend, bridge, scope)
    assert json.loads(result.body) == {"SCRIPT_NAME": script_name, "PATH_INFO": path_info}


# ------------------------------------------------------------------ C2 raw path


def test_c2_path_info_is_latin1_bytes_from_raw_path(make: Bridges, backend: str) -> None:
    bridge = make(environ_echo("PATH_INFO"))
    scope = make_scope(path="/\ufffd", raw_path=b"/%FF")
    assert json.loads(request(backend, bridge, scope).body) == {"PATH_INFO": "/\xff"}
    scope = make_scope(path="/caf\xe9", raw_path=b"/caf%C3%A9")
    assert json.loads(request(backend, bridge, scope).body) == {"PATH_INFO": "/caf\xc3\xa9"}


# -------------------------------------------------------------------- C3 headers


def test_c3_headers_are_latin1_and_lowercased(make: Bridges, backend: str) -> None:
    seen: dict[str, str] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen["agent"] = environ["HTTP_USER_AGENT"]
        start_response("200 OK", [("X-Name", "caf\xe9")])
        return [b""]

    bridge = make(app)
    scope = make_scope(headers=[(b"host", b"h"), (b"user-agent", b"caf\xe9")])
    result = request(backend, bridge, scope)
    assert seen["agent"] == "caf\xe9"
    assert (b"x-name", b"caf\xe9") in result.headers


def test_c3_non_latin1_header_value_is_an_app_error(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Name", "\u20ac")])
        return [b""]

    with pytest.raises(AppProtocolError, match="latin-1"):
        request(backend, make(app))


# ------------------------------------------------------------- C4 duplicates


def test_c4_duplicate_headers_joined_and_cookies_with_semicolon(
    make: Bridges, backend: str
) -> None:
    bridge = make(wsgiref.validate.validator(environ_echo("HTTP_ACCEPT", "HTTP_COOKIE")))
    scope = make_scope(
        headers=[
            (b"host", b"h"),
            (b"accept", b"text/html"),
            (b"cookie", b"a=1"),
            (b"accept", b"text/plain"),
            (b"cookie", b"b=2"),
        ]
    )
    assert json.loads(request(backend, bridge, scope).body) == {
        "HTTP_ACCEPT": "text/html, text/plain",
        "HTTP_COOKIE": "a=1; b=2",
    }


# ------------------------------------------------------------ C5 underscores


def test_c5_header_names_with_underscore_are_dropped(make: Bridges, backend: str) -> None:
    bridge = make(environ_echo("HTTP_X_FORWARDED_FOR"))
    scope = make_scope(
        headers=[
            (b"host", b"h"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"x-forwarded-for", b"1.2.3.4"),
        ]
    )
    assert json.loads(request(backend, bridge, scope).body) == {"HTTP_X_FORWARDED_FOR": "1.2.3.4"}


# ------------------------------------------------------------ C6 CGI variables


def test_c6_cgi_variables_are_str_and_validate(make: Bridges, backend: str) -> None:
    captured: dict[str, Any] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        captured.update(environ)
        body = environ["wsgi.input"].read(3)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [body]

    bridge = make(wsgiref.validate.validator(app))
    scope = make_scope(
        method="POST",
        headers=[(b"host", b"h"), (b"content-type", b"text/plain"), (b"content-length", b"3")],
    )
    result = request(backend, bridge, scope, [b"abc"])
    assert result.body == b"abc"
    assert captured["CONTENT_TYPE"] == "text/plain"
    assert captured["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in captured and "HTTP_CONTENT_LENGTH" not in captured
    assert captured["SERVER_PORT"] == "8000"
    for key, value in captured.items():
        if "." not in key:
            assert type(value) is str, key


# ------------------------------------------------------------ C7 start_response


def test_c7_exc_info_replaces_headers(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain"), ("X-Second", "2")],
                sys.exc_info(),
            )
        return [b"error page"]

    result = request(backend, make(wsgiref.validate.validator(app)))
    assert result.status == 500
    assert result.header(b"x-second") == b"2"
    assert result.header(b"x-first") is None
    assert result.body == b"error page"


def test_c7_start_response_sends_nothing_before_first_nonempty_chunk(
    make: Bridges, backend: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        try:
            raise KeyError("late")
        except KeyError:
            start_response("503 Service Unavailable", [], sys.exc_info())
        yield b"x"

    result = request(backend, make(app))
    assert result.status == 503
    assert result.body == b"x"


def test_c7_exc_info_after_headers_sent_reraises(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with pytest.raises(KeyError, match="late failure"):
        request(backend, make(app))


def test_c7_second_call_without_exc_info_is_an_error(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    with pytest.raises(AppProtocolError, match="second time without exc_info"):
        request(backend, make(app))


def test_c7_start_response_during_first_iteration(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("201 Created", [("X-Lazy", "yes")])
        yield b"made"

    result = request(backend, make(app))
    assert result.status == 201
    assert result.header(b"x-lazy") == b"yes"
    assert result.body == b"made"


# ----------------------------------------------------------------- C8 write()


def test_c8_write_sends_before_returning(make: Bridges, backend: str, executor: str) -> None:
    arrived = threading.Event()
    observed: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first")
        if executor == "greenlet":
            observed.append(arrived.is_set())  # sent by the time write() returned
        else:
            # In transmission: the loop sends it while this thread still runs.
            observed.append(arrived.wait(5))
        write(b"second")
        return [b"third"]

    async def on_send(message: Message) -> None:
        if message.get("body") == b"first":
            arrived.set()

    result = request(backend, make(wsgiref.validate.validator(app)), on_send=on_send)
    assert observed == [True]
    assert result.body == b"firstsecondthird"
    assert result.complete


def test_c8_write_past_content_length_is_an_error(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "3")])
        write(b"abcdef")
        return []

    messages: list[Message] = []

    async def on_send(message: Message) -> None:
        messages.append(message)

    with pytest.raises(AppProtocolError, match="past the response's Content-Length"):
        request(backend, make(app), on_send=on_send)
    assert b"".join(m.get("body", b"") for m in messages[1:]) == b"abc"


# ----------------------------------------------------------------- C9 close()


class Closing:
    """An iterable that records close() and how far it was iterated."""

    def __init__(self, chunks: Iterable[bytes], fail_at: int | None = None) -> None:
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.closed = threading.Event()
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("app failed mid-response")
            self.produced += 1
            yield chunk

    def close(self) -> None:
        self.closed.set()


def closing_app(
    body: Closing, headers: list[tuple[str, str]] | None = None
) -> Callable[[Environ, StartResponse], Closing]:
    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", headers or [])
        return body

    return app


def test_c9_close_called_on_normal_end(make: Bridges, backend: str) -> None:
    body = Closing([b"a", b"b"])
    assert request(backend, make(closing_app(body))).body == b"ab"
    assert body.closed.is_set()


def test_c9_close_called_on_a_list_subclass(make: Bridges, backend: str) -> None:
    """A ``list`` subclass with ``close()`` is closed (only a plain list is known to have none)."""
    closed: list[bool] = []

    class ClosingList(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    assert request(backend, make(closing_app(ClosingList([b"a", b"b"])))).body == b"ab"  # type: ignore[arg-type]
    assert closed == [True]


@pytest.mark.parametrize(
    ("chunks", "bodies"),
    [
        ([b"ab"], [(b"ab", False)]),
        ([b"a", b"b"], [(b"a", True), (b"b", False)]),
        ((b"a", b"b"), [(b"a", True), (b"b", False)]),
        ([b"a", b""], [(b"a", True), (b"", False)]),
        ([b"", b"a"], [(b"a", False)]),
        ([b"a", b"", b"b"], [(b"a", True), (b"b", False)]),
        ([b"", b""], [(b"", False)]),
        ([], [(b"", False)]),
    ],
)
def test_c7_c20_list_bodies_end_with_their_last_non_empty_chunk(
    make: Bridges, backend: str, chunks: Any, bodies: list[tuple[bytes, bool]]
) -> None:
    """A list or tuple body: its last item, if not empty, is the final message; else one more.

    Empty items send nothing, and the response starts with the first non-empty one (C7).
    """

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        return chunks

    result = request(backend, make(app))
    assert [m["type"] for m in result.messages].count("http.response.start") == 1
    assert [(m.get("body", b""), m.get("more_body", False)) for m in result.bodies] == bodies


def test_c9_close_called_on_app_error(make: Bridges, backend: str) -> None:
    body = Closing([b"a", b"b"], fail_at=1)
    with pytest.raises(RuntimeError, match="mid-response"):
        request(backend, make(closing_app(body)))
    assert body.closed.is_set()


def test_c9_close_called_on_early_stop_at_content_length(make: Bridges, backend: str) -> None:
    body = Closing([b"abc", b"de", b"never"])
    result = request(backend, make(closing_app(body, [("Content-Length", "5")])))
    assert result.body == b"abcde"
    assert body.produced == 2  # iteration stopped at Content-Length
    assert body.closed.is_set()


def test_c9_close_called_on_client_disconnect(make: Bridges, backend: str) -> None:
    body = Closing([b"a"] * 100)

    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    bridge = make(closing_app(body), send_window=4)
    request(backend, bridge, on_send=on_send)  # a gone client is not an error
    assert body.closed.is_set()
    assert body.produced < 100
    assert_workers_idle(bridge)


# ----------------------------------------------------------------- C10 input


def body_app(reader: Callable[[Any], Any]) -> Callable[[Environ, StartResponse], list[bytes]]:
    """An app answering with ``repr(reader(wsgi.input))``."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        out = repr(reader(environ["wsgi.input"])).encode()
        start_response("200 OK", [("Content-Length", str(len(out)))])
        return [out]

    return app


def post_scope(length: int | None) -> dict[str, Any]:
    headers = [(b"host", b"h")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return make_scope(method="POST", headers=headers)


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        pytest.param(lambda f: f.read(), b"ab\ncd\nef", id="read-all"),
        pytest.param(
            lambda f: [f.read(3), f.read(3), f.read(5), f.read(1)],
            [b"ab\n", b"cd\n", b"ef", b""],
            id="read-n",
        ),
        pytest.param(
            lambda f: [f.readline(), f.readline(1), f.readline()],
            [b"ab\n", b"c", b"d\n"],
            id="readline",
        ),
        pytest.param(lambda f: f.readlines(), [b"ab\n", b"cd\n", b"ef"], id="readlines"),
        pytest.param(lambda f: f.readlines(4), [b"ab\n", b"cd\n"], id="readlines-hint"),
        pytest.param(lambda f: list(f), [b"ab\n", b"cd\n", b"ef"], id="iterate"),
    ],
)
def test_c10_input_methods(
    make: Bridges, backend: str, reader: Callable[[Any], Any], expected: Any
) -> None:
    chunks = [b"a", b"b\nc", b"d\n", b"ef"]
    result = request(backend, make(body_app(reader)), post_scope(8), chunks)
    assert result.body == repr(expected).encode()


def test_c10_input_never_reads_past_content_length(make: Bridges, backend: str) -> None:
    result = request(backend, make(body_app(lambda f: f.read())), post_scope(4), [b"abc", b"defg"])
    assert result.body == repr(b"abcd").encode()


def test_c10_chunked_upload_without_content_length(make: Bridges, backend: str) -> None:
    chunks = [b"x" * 1000] * 50
    result = request(backend, make(body_app(lambda f: len(f.read()))), post_scope(None), chunks)
    assert result.body == b"50000"


def test_c10_body_is_streamed_not_buffered(make: Bridges, backend: str) -> None:
    """The bridge holds a bounded amount of the body, however large the upload."""
    chunk = b"z" * 65536
    total_chunks = 400  # 25 MiB
    consumed = [0]
    lag: list[int] = []
    delivered = [0]

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        while data := stream.read(65536):
            consumed[0] += len(data)
        start_response("200 OK", [("Content-Length", str(len(str(consumed[0]))))])
        return [str(consumed[0]).encode()]

    bridge = make(app, body_window=256 * 1024, prefetch=64 * 1024)

    async def main() -> Result:
        messages: list[Message] = []
        answered = anyio.Event()

        async def receive() -> Message:
            if delivered[0] < total_chunks:
                delivered[0] += 1
                lag.append(delivered[0] * len(chunk) - consumed[0])
                return {
                    "type": "http.request",
                    "body": chunk,
                    "more_body": delivered[0] < total_chunks,
                }
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        with anyio.fail_after(30):
            await bridge(post_scope(None), receive, send)
        return Result(messages)

    result = anyio.run(main, backend=backend)
    assert result.body == str(total_chunks * len(chunk)).encode()
    # Never more than the read-ahead window (+ one chunk in flight) ahead of the app.
    assert max(lag) <= 256 * 1024 + 2 * len(chunk), max(lag)


# ------------------------------------------------------------- C11 disconnect


def test_c11_disconnect_mid_upload_raises_in_read(make: Bridges, backend: str) -> None:
    seen: list[BaseException | bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            seen.append(environ["wsgi.input"].read())
        except ClientDisconnected as exc:
            seen.append(exc)
            raise
        start_response("200 OK", [])
        return [b"unreachable"]

    async def main() -> list[Message]:
        sent: list[Message] = []
        steps: list[Message] = [
            {"type": "http.request", "body": b"x" * 100, "more_body": True},
            {"type": "http.request", "body": b"y" * 100, "more_body": True},
            {"type": "http.disconnect"},
        ]

        async def receive() -> Message:
            if steps:
                return steps.pop(0)
            await anyio.sleep_forever()
            raise AssertionError

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            await make(app, prefetch=1)(post_scope(1000), receive, send)
        return sent

    sent = anyio.run(main, backend=backend)
    assert len(seen) == 1 and isinstance(seen[0], ClientDisconnected), seen
    assert sent == []  # nothing to answer: the client is gone


def test_c11_short_body_is_not_silently_truncated(make: Bridges, backend: str) -> None:
    def reader(f: Any) -> Any:
        try:
            return f.read()
        except ClientDisconnected as exc:
            return f"error: {exc}"

    result = request(backend, make(body_app(reader)), post_scope(10), [b"abc"])
    assert b"error" in result.body and b"short of its Content-Length" in result.body


# ---------------------------------------------------------------- C12 errors


def test_c12_wsgi_errors_goes_to_logging_not_stdout(
    make: Bridges,
    backend: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("something went wrong\n")
        errors.writelines(["partial ", "line"])
        errors.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    with caplog.at_level(logging.ERROR, logger="asgibridge.wsgi"):
        request(backend, make(wsgiref.validate.validator(app)))
    messages = [r.getMessage() for r in caplog.records if r.name == "asgibridge.wsgi"]
    assert "something went wrong" in messages
    assert "partial line" in messages
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------ C13 backpressure


def test_c13_slow_client_slows_the_app(make: Bridges, backend: str, executor: str) -> None:
    produced = [0]
    lag: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(150):
            produced[0] += 1
            yield b"x" * 100

    sent = [0]

    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            sent[0] += 1
            lag.append(produced[0] - sent[0])
            await anyio.sleep(0.001)

    result = request(backend, make(app, send_window=4), on_send=on_send)
    assert len(result.body) == 15000
    bound = 1 if executor == "greenlet" else 4 + 2
    assert max(lag) <= bound, max(lag)


# --------------------------------------------------------- C14 send failure


def test_c14_send_failure_stops_app_and_frees_worker(make: Bridges, backend: str) -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:  # would stream forever
                yield b"data"
        finally:
            closed.set()

    calls = [0]

    async def on_send(message: Message) -> None:
        calls[0] += 1
        if calls[0] >= 3:
            raise OSError("connection reset")

    bridge = make(app)
    request(backend, bridge, on_send=on_send)
    assert closed.is_set()
    assert_workers_idle(bridge)


def test_c14_client_disconnect_during_streaming(make: Bridges, backend: str, executor: str) -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield b"tick"
                if executor == "thread":
                    time.sleep(0.001)
        finally:
            closed.set()

    bridge = make(app)

    async def main() -> int:
        streamed = anyio.Event()
        count = [0]
        first = True

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await streamed.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                count[0] += 1
                if count[0] == 5:
                    streamed.set()

        with anyio.fail_after(10):
            await bridge(make_scope(), receive, send)
        return count[0]

    count = anyio.run(main, backend=backend)
    assert count >= 5
    assert closed.is_set()
    assert_workers_idle(bridge)


def test_c14_send_raising_a_non_os_error_propagates(make: Bridges, backend: str) -> None:
    body = Closing([b"a"] * 5)

    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise RuntimeError("server bug")

    bridge = make(closing_app(body))
    with pytest.raises(RuntimeError, match="server bug"):
        request(backend, bridge, on_send=on_send)
    assert body.closed.is_set()
    assert_workers_idle(bridge)


def test_c14_cancelled_request_frees_worker(make: Bridges, backend: str, executor: str) -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield b"tick"
                if executor == "thread":
                    time.sleep(0.001)
        finally:
            closed.set()

    bridge = make(app)

    async def main() -> None:
        first = [True]

        async def receive() -> Message:
            if first.pop() if first else False:
                return {"type": "http.request", "body": b"", "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError

        count = [0]

        async def send(message: Message) -> None:
            count[0] += 1

        with anyio.move_on_after(0.2):
            await bridge(make_scope(), receive, send)
        assert count[0] > 1

    anyio.run(main, backend=backend)
    assert closed.wait(5)
    assert_workers_idle(bridge)


# ---------------------------------------------------------- C15 stalled uploads


def test_c15_stalled_uploads_do_not_starve_the_pool(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    bridge = make(app, max_workers=10)

    async def main() -> Result:
        release = anyio.Event()

        async def stalled() -> None:
            first = True

            async def receive() -> Message:
                nonlocal first
                if first:
                    first = False
                    return {"type": "http.request", "body": b"x" * 10, "more_body": True}
                await release.wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                pass

            await bridge(post_scope(1000), receive, send)

        async with anyio.create_task_group() as tg:
            for _ in range(11):
                tg.start_soon(stalled)
            await anyio.sleep(0.05)
            result = await call(bridge, timeout=5)
            release.set()
        return result

    assert anyio.run(main, backend=backend).body == b"ok"
    assert_workers_idle(bridge)


def _stalled_past_prefetch(
    backend: str, bridge: WsgiToAsgi, stalls: int, sent: int, extra: int = 0
) -> tuple[Result, float, int]:
    """``stalls`` uploads that send ``sent`` bytes of 1 MiB and stop, then a GET.

    Returns the GET's result, its latency, and the most pool threads seen.
    """

    async def main() -> tuple[Result, float, int]:
        release = anyio.Event()
        reading = [0]

        async def stalled() -> None:
            chunks = [b"x" * 16384] * (sent // 16384)

            async def receive() -> Message:
                if chunks:
                    return {"type": "http.request", "body": chunks.pop(), "more_body": True}
                await release.wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                pass

            await bridge(post_scope(1 << 20), receive, send)

        async with anyio.create_task_group() as tg:
            for _ in range(stalls):
                tg.start_soon(stalled)
            # Bounded: wait until the workers are stuck in their reads.
            with anyio.move_on_after(10):
                while bridge._adm is None or bridge._adm.stalled + extra < stalls:
                    await anyio.sleep(0.01)
            reading[0] = bridge.pool.size
            started = time.monotonic()
            result = await call(bridge, timeout=5)
            latency = time.monotonic() - started
            release.set()
        return result, latency, reading[0]

    return anyio.run(main, backend=backend)


def _read_all_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def test_c15_uploads_stalled_past_the_prefetch_do_not_starve_the_pool(backend: str) -> None:
    """Issue 11: with max_workers=10, 11 uploads stalled past the 64 KiB prefetch blocked a GET.

    Thread mode only: greenlet mode holds no thread while a read waits.
    """
    make = Bridges("thread")
    try:
        bridge = make(_read_all_app, max_workers=10)
        result, latency, threads = _stalled_past_prefetch(backend, bridge, 30, 128 * 1024)
        assert result.body == b"ok"
        assert latency < 1.0, latency
        assert threads <= 10 + bridge.max_stalled_uploads
        assert_workers_idle(bridge)
    finally:
        make.close()


def test_c15_threads_stay_within_max_workers_plus_max_stalled_uploads(backend: str) -> None:
    """Past the cap, waiting workers keep their slots: threads never exceed the bound."""
    make = Bridges("thread")
    try:
        bridge = make(_read_all_app, max_workers=4, max_stalled_uploads=6, body_timeout=5.0)
        # 9 stalls: 6 stop counting, 3 keep their slots, one slot is left for the GET.
        result, latency, threads = _stalled_past_prefetch(backend, bridge, 9, 128 * 1024, extra=3)
        assert result.body == b"ok" and latency < 1.0, latency
        assert bridge._adm is not None and bridge._adm.stalled == 0
        assert threads <= 4 + 6
        assert bridge.pool.size <= 4 + 6
        assert_workers_idle(bridge)
    finally:
        make.close()


def test_c15_body_timeout_frees_a_worker_stuck_in_read(make: Bridges, backend: str) -> None:
    started = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        started.set()
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"unreachable"]

    bridge = make(app, prefetch=16, body_timeout=0.2)

    async def main() -> Result:
        release = anyio.Event()
        steps = [{"type": "http.request", "body": b"x" * 32, "more_body": True}]
        sent: list[Message] = []

        async def receive() -> Message:
            if steps:
                return steps.pop(0)
            await release.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            if bridge.executor == "greenlet":
                # No thread to free: greenlet mode has no body_timeout; leave after a while.
                with anyio.move_on_after(0.3):
                    await bridge(post_scope(1000), receive, send)
            else:
                await bridge(post_scope(1000), receive, send)
        release.set()
        return Result(sent)

    result = anyio.run(main, backend=backend)
    assert started.is_set()
    if bridge.executor == "thread":
        assert result.status == 408
    assert_workers_idle(bridge)


# --------------------------------------------------------- C16 Content-Length


def test_c16_never_sends_more_than_content_length(make: Bridges, backend: str) -> None:
    body = Closing([b"0123456789"])
    result = request(backend, make(closing_app(body, [("Content-Length", "5")])))
    assert result.body == b"01234"
    assert result.complete
    assert body.closed.is_set()


def test_c16_short_response_is_aborted_and_logged(
    make: Bridges, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = Closing([b"abc"])
    messages: list[Message] = []

    async def on_send(message: Message) -> None:
        messages.append(message)

    with caplog.at_level(logging.DEBUG, logger="asgibridge"):
        with pytest.raises(AppProtocolError, match="Content-Length 10"):
            request(backend, make(closing_app(body, [("Content-Length", "10")])), on_send=on_send)
    assert not Result(messages).complete if messages else True
    # Raised to the server, which logs it once: the bridge itself logs nothing (defect 7).
    assert [r for r in caplog.records if r.name.startswith("asgibridge")] == []
    assert body.closed.is_set()


def test_c16_head_response_may_omit_the_body(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "100")])
        return []

    result = request(backend, make(app), make_scope(method="HEAD"))
    assert result.status == 200 and result.complete


# ---------------------------------------------------- C17 lifespan, websocket


def run_lifespan(backend: str, bridge: Any) -> list[Message]:
    """Drive a lifespan scope through startup and shutdown; return what the bridge sent."""

    async def main() -> list[Message]:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[Message] = []

        async def receive() -> Message:
            return inbox.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            await bridge({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        return sent

    return anyio.run(main, backend=backend)


def test_c17_lifespan_runs_hooks_and_answers(make: Bridges, backend: str) -> None:
    calls: list[str] = []

    def sync_start() -> None:
        calls.append("sync start")

    async def async_start() -> None:
        calls.append("async start")

    def stop() -> None:
        calls.append("stop")

    bridge = make(hello, on_startup=[sync_start, async_start], on_shutdown=stop)

    sent = run_lifespan(backend, bridge)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == ["sync start", "async start", "stop"]
    assert bridge._adm is None  # the worker threads were stopped


def test_c17_thread_sensitive_calls_from_a_sync_hook_run_on_the_hooks_thread(
    make: Bridges, backend: str
) -> None:
    """hook -> async_to_sync -> sync_to_async: like a request, the inner call comes back."""
    from asgibridge.sync import sync_to_async

    threads: dict[str, int] = {}

    def inner() -> None:
        threads["inner"] = threading.get_ident()

    async def middle() -> None:
        await sync_to_async(inner)()

    def start() -> None:
        threads["hook"] = threading.get_ident()
        async_to_sync(middle)()

    bridge = make(hello, on_startup=start)

    sent = run_lifespan(backend, bridge)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert threads["inner"] == threads["hook"]


def test_c17_lifespan_startup_failure_is_reported(make: Bridges, backend: str) -> None:
    def broken() -> None:
        raise ConnectionError("database is down")

    bridge = make(hello, on_startup=broken)

    async def main() -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "lifespan.startup"}

        async def send(message: Message) -> None:
            sent.append(message)

        await bridge({"type": "lifespan"}, receive, send)
        return sent

    sent = anyio.run(main, backend=backend)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "database is down" in sent[0]["message"]


def test_c17_websocket_is_refused_with_close(make: Bridges, backend: str) -> None:
    async def main() -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await make(hello)({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
        return sent

    sent = anyio.run(main, backend=backend)
    assert [m["type"] for m in sent] == ["websocket.close"]


def test_c17_unknown_scope_type_raises(make: Bridges, backend: str) -> None:
    async def main() -> None:
        async def receive() -> Message:
            raise AssertionError

        async def send(message: Message) -> None:
            raise AssertionError

        await make(hello)({"type": "webtransport"}, receive, send)

    with pytest.raises(ServerProtocolError, match="scope type 'webtransport'"):
        anyio.run(main, backend=backend)


# ------------------------------------------------------------ C18 contextvars

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_c18_context_variables_reach_the_app(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        value = request_id.get().encode()
        start_response("200 OK", [("Content-Length", str(len(value)))])
        return [value]

    bridge = make(app)

    async def main() -> Result:
        request_id.set("req-42")
        return await call(bridge)

    assert anyio.run(main, backend=backend).body == b"req-42"


def test_c18_async_to_sync_inside_the_app_uses_the_server_loop(make: Bridges, backend: str) -> None:
    loops: list[object] = []

    async def where() -> int:
        loops.append(threading.get_ident())
        await anyio.sleep(0)
        return 7

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        value = str(async_to_sync(where)()).encode()
        start_response("200 OK", [("Content-Length", str(len(value)))])
        return [value]

    async def main() -> tuple[Result, int]:
        return await call(make(app)), threading.get_ident()

    result, loop_thread = anyio.run(main, backend=backend)
    assert result.body == b"7"
    assert loops == [loop_thread]


def test_c18_thread_sensitive_calls_run_on_the_apps_own_thread(make: Bridges, backend: str) -> None:
    """app -> async_to_sync -> sync_to_async: the inner sync call runs where the app runs."""
    from asgibridge.sync import sync_to_async

    threads: dict[str, int] = {}

    def inner() -> None:
        threads["inner"] = threading.get_ident()

    async def middle() -> None:
        await sync_to_async(inner)()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        threads["app"] = threading.get_ident()
        async_to_sync(middle)()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    assert request(backend, make(app)).body == b"ok"
    assert threads["inner"] == threads["app"]


# ----------------------------------------------------------- C19 file wrapper


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    return path


def file_app(path: Path, opened: list[Any]) -> Callable[[Environ, StartResponse], Any]:
    def app(environ: Environ, start_response: StartResponse) -> Any:
        f = open(path, "rb")  # closed by the wrapper's close()
        opened.append(f)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 8192)

    return app


def test_c19_file_wrapper_streams_blocks(make: Bridges, backend: str, data_file: Path) -> None:
    opened: list[Any] = []
    result = request(backend, make(wsgiref.validate.validator(file_app(data_file, opened))))
    assert result.body == data_file.read_bytes()
    assert opened[0].closed


def test_c19_file_wrapper_uses_pathsend(make: Bridges, backend: str, data_file: Path) -> None:
    opened: list[Any] = []
    scope = make_scope(extensions={"http.response.pathsend": {}})
    result = request(backend, make(file_app(data_file, opened)), scope)
    assert [m["type"] for m in result.messages] == [
        "http.response.start",
        "http.response.pathsend",
    ]
    assert result.messages[1]["path"] == str(data_file.resolve())
    assert result.header(b"content-length") == str(data_file.stat().st_size).encode()
    assert opened[0].closed


def test_c19_file_wrapper_uses_zerocopysend(make: Bridges, backend: str, data_file: Path) -> None:
    opened: list[Any] = []
    open_during_send: list[bool] = []

    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.zerocopysend":
            open_during_send.append(not message["file"].closed)

    scope = make_scope(extensions={"http.response.zerocopysend": {}})
    result = request(backend, make(file_app(data_file, opened)), scope, on_send=on_send)
    zero = result.messages[1]
    assert zero["type"] == "http.response.zerocopysend"
    assert zero["offset"] == 0 and zero["count"] == data_file.stat().st_size
    assert zero["more_body"] is False
    assert open_during_send == [True]
    assert opened[0].closed


@pytest.mark.parametrize("extension", ["http.response.pathsend", "http.response.zerocopysend"])
def test_c19_file_wrapper_after_write_is_iterated_not_handed_over(
    make: Bridges, backend: str, data_file: Path, extension: str
) -> None:
    """Headers already went out with write(): the file follows as body, with no second start."""
    opened: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> Any:
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        write(b"head:")
        f = open(data_file, "rb")  # closed by the wrapper's close()
        opened.append(f)
        return environ["wsgi.file_wrapper"](f, 8192)

    result = request(backend, make(app), make_scope(extensions={extension: {}}))
    types = [m["type"] for m in result.messages]
    assert types.count("http.response.start") == 1
    assert set(types[1:]) == {"http.response.body"}
    assert result.body == b"head:" + data_file.read_bytes()
    assert opened[0].closed


# ----------------------------------------------------------- C20 empty bodies


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_c20_empty_iterable_gives_one_start_and_one_body(
    make: Bridges, backend: str, kind: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("204 No Content", [])
        if kind == "list":
            return []
        return iter(())

    result = request(backend, make(app))
    assert [m["type"] for m in result.messages] == ["http.response.start", "http.response.body"]
    assert result.messages[1].get("more_body", False) is False
    assert result.status == 204


# -------------------------------------------------------------- C21 bounds


def test_c21_too_many_headers_answered_400(make: Bridges, backend: str) -> None:
    called: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        called.append(True)
        return hello(environ, start_response)

    bridge = make(app, max_headers=20)
    scope = make_scope(headers=[(b"host", b"h")] + [(f"x-h{i}".encode(), b"v") for i in range(20)])
    result = request(backend, bridge, scope)
    assert result.status == 400 and b"max_headers" in result.body
    assert called == []


def test_c21_too_many_repeats_answered_400(make: Bridges, backend: str) -> None:
    called: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        called.append(True)
        return hello(environ, start_response)

    scope = make_scope(headers=[(b"host", b"h")] + [(b"cookie", b"a=1")] * 33)
    result = request(backend, make(app), scope)
    assert result.status == 400 and b"max_header_repeats" in result.body
    assert called == []


def test_c21_bounds_and_errors_stream_stay_assignable(make: Bridges, backend: str) -> None:
    """The options are kept by the environ builder; assigning them still takes effect."""
    seen: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen.append(environ["wsgi.errors"])
        return hello(environ, start_response)

    bridge = make(app)
    scope = make_scope(headers=[(b"host", b"h")] + [(b"x-a", b"1")] * 4)
    assert request(backend, bridge, scope).status == 200
    bridge.max_header_repeats = 3
    assert bridge.max_header_repeats == 3
    result = request(backend, bridge, scope)
    assert result.status == 400 and b"max_header_repeats=3" in result.body
    bridge.max_headers = 2
    result = request(backend, bridge, make_scope(headers=[(b"a", b"1")] * 3))
    assert result.status == 400 and b"max_headers=2" in result.body
    stream = io.StringIO()
    bridge.errors = stream
    bridge.max_headers = bridge.max_header_repeats = 100
    assert request(backend, bridge, scope).status == 200
    assert seen[-1] is stream and seen[0] is not stream
    with pytest.raises(ValueError, match="max_headers must be a positive int"):
        bridge.max_headers = 0


# ------------------------------------------------------- C22 header values


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        pytest.param(" a=b; Path=/", b"a=b; Path=/", id="django-set-cookie-leading-space"),
        pytest.param("v ", b"v", id="trailing-space"),
        pytest.param("\t v \t", b"v", id="tabs-and-spaces"),
        pytest.param("a\tb", b"a\tb", id="interior-tab-kept"),
        pytest.param(" caf\xe9 ", b"caf\xe9", id="latin-1"),
        pytest.param("   ", b"", id="only-space"),
    ],
)
def test_c22_response_header_values_are_stripped(
    make: Bridges, backend: str, value: str, sent: bytes
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", value), ("Content-Length", " 2 ")])
        return [b"ok"]

    result = request(backend, make(app))
    assert result.status == 200
    assert result.header(b"set-cookie") == sent
    assert result.header(b"content-length") == b"2"
    assert result.body == b"ok"


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x08", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f"]
)
def test_c22_control_characters_in_values_are_refused_before_anything_is_sent(
    make: Bridges, backend: str, char: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Bad", f"a{char}b")])
        return [b"never sent"]

    messages: list[Message] = []

    async def on_send(message: Message) -> None:
        messages.append(message)

    with pytest.raises(AppProtocolError, match="control character"):
        request(backend, make(app), on_send=on_send)
    assert messages == []  # the server answers 500: nothing was started


def test_c22_app_that_catches_the_refusal_can_still_answer(make: Bridges, backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            start_response("200 OK", [("X-Bad", "a\x0bb")])
        except AppProtocolError:
            start_response("500 Internal Server Error", [("Content-Length", "3")], sys.exc_info())
            return [b"err"]
        return [b"unreachable"]

    result = request(backend, make(app))
    assert result.status == 500 and result.body == b"err"
    assert all(k != b"x-bad" for k, _ in result.headers)


# ----------------------------------------------------------------- the rest


def test_hello_through_validator(make: Bridges, backend: str) -> None:
    result = request(backend, make(wsgiref.validate.validator(hello)))
    assert (result.status, result.body) == (200, b"hello")
    assert result.header(b"content-length") == b"5"


def test_many_concurrent_requests(make: Bridges, backend: str) -> None:
    bridge = make(hello)

    async def main() -> list[bytes]:
        results: list[bytes] = []

        async def one() -> None:
            results.append((await call(bridge)).body)

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
        return results

    assert anyio.run(main, backend=backend) == [b"hello"] * 100
    assert_workers_idle(bridge)
    adm = bridge._adm
    if adm is not None:
        assert wait_until(lambda: adm.active == 0)


def test_blocking_app_gets_more_threads(backend: str) -> None:
    """Queued requests start on new threads when the running ones are blocked."""
    bridge = WsgiToAsgi(hello_after(0.3), max_workers=8, active_workers=1)

    async def main() -> float:
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(call, bridge)
        return time.monotonic() - start

    try:
        elapsed = anyio.run(main, backend=backend)
    finally:
        bridge.close()
    assert elapsed < 1.5, elapsed  # 8 x 0.3 s sequentially would be 2.4 s


def test_growth_checker_cancelled_with_its_loop_can_restart(backend: str) -> None:
    """A checker cancelled with its loop does not stop later loops from growing the pool."""
    from asgibridge._core import batching_ref, current_loop_ref
    from asgibridge._wsgi import Admission

    started: list[object] = []
    adm = Admission(started.append, soft=1, hard=4)

    class Entry:
        admitted = False
        gone = False

        def __init__(self, ref: Any) -> None:
            self.ref = ref
            self.job = object()

    async def main() -> None:
        ref = batching_ref(current_loop_ref())
        adm.admit(Entry(ref))  # type: ignore[arg-type]
        adm.admit(Entry(ref))  # type: ignore[arg-type]  # queued: starts a checker
        assert adm.checking
        # Return at once: the loop ends and cancels the checker mid-sleep.

    anyio.run(main, backend=backend)
    assert not adm.checking
    assert len(started) == 1


def hello_after(seconds: float) -> Callable[[Environ, StartResponse], list[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        time.sleep(seconds)
        return hello(environ, start_response)

    return app


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="executor"):
        WsgiToAsgi(hello, executor="process")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_workers"):
        WsgiToAsgi(hello, max_workers=0)
    with pytest.raises(TypeError, match="on_startup"):
        WsgiToAsgi(hello, on_startup=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="WSGI callable"):
        WsgiToAsgi(42)  # type: ignore[arg-type]


def test_no_threads_before_first_request_and_after_close(backend: str) -> None:
    before = threading.active_count()
    bridge = WsgiToAsgi(hello)
    assert threading.active_count() == before
    assert request(backend, bridge).body == b"hello"
    bridge.close()
    assert wait_until(lambda: threading.active_count() == before)
    # A closed bridge starts afresh on the next request.
    assert request(backend, bridge).body == b"hello"
    bridge.close()


def test_greenlet_mode_uses_no_threads(backend: str) -> None:
    before = threading.active_count()
    bridge = WsgiToAsgi(hello, executor="greenlet")
    assert request(backend, bridge).body == b"hello"
    assert threading.active_count() == before


def test_pid_change_starts_a_fresh_pool(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = WsgiToAsgi(hello)
    try:
        request(backend, bridge)
        first = bridge.pool
        monkeypatch.setattr(os, "getpid", lambda: -1)
        assert bridge.pool is not first
    finally:
        monkeypatch.undo()
        first.close(5)
        bridge.close()


def test_c11_c14_thread_exchange_phases_follow_the_table(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of a thread-mode request's phase is in the table the code declares.

    Walks a normal request, a streamed response, a client that leaves mid-stream
    and an app error, recording each write of ``ThreadExchange.phase``.
    """
    import itertools

    import asgibridge._wsgi._thread as thread_path
    from asgibridge._wsgi import TRANSITIONS, Phase, ThreadExchange

    slot = ThreadExchange.__dict__["phase"]  # the slot the exchange writes
    steps: list[tuple[Phase, Phase]] = []
    finals: list[Phase] = []

    class Recording(ThreadExchange):
        __slots__ = ()

        @property  # type: ignore[override]
        def phase(self) -> Phase:
            return slot.__get__(self)  # type: ignore[no-any-return]

        @phase.setter
        def phase(self, new: Phase) -> None:
            try:
                old = slot.__get__(self)
            except AttributeError:  # the first write, in __init__
                assert new is Phase.ACTIVE
            else:
                steps.append((old, new))
            slot.__set__(self, new)

        def on_settle(self, job: Any, ok: bool, value: Any) -> None:
            super().on_settle(job, ok, value)
            finals.append(self.phase)

    monkeypatch.setattr(thread_path, "ThreadExchange", Recording)

    def streamer(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(20):
            yield b"tick"
            time.sleep(0.001)

    def failing(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError("the app failed")

    async def leaves_after_first_chunk(bridge: WsgiToAsgi) -> None:
        streamed = anyio.Event()
        first = True

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await streamed.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                streamed.set()

        await bridge(make_scope(), receive, send)

    bridges = [WsgiToAsgi(a) for a in (hello, streamer, streamer, failing)]
    seen: dict[str, list[tuple[Phase, Phase]]] = {}

    async def main() -> None:
        with anyio.fail_after(10):
            steps.clear()
            assert (await call(bridges[0])).body == b"hello"
            seen["normal"] = steps[:]
            steps.clear()
            assert (await call(bridges[1])).complete
            seen["streamed"] = steps[:]
            steps.clear()
            await leaves_after_first_chunk(bridges[2])
            seen["client leaves"] = steps[:]
            steps.clear()
            with pytest.raises(RuntimeError, match="the app failed"):
                await call(bridges[3])
            seen["app error"] = steps[:]

    try:
        anyio.run(main, backend=backend)
    finally:
        for bridge in bridges:
            bridge.close()
    A, S, D, G = Phase.ACTIVE, Phase.STREAMING, Phase.SETTLED, Phase.GONE
    for name, taken in seen.items():
        assert set(taken) <= TRANSITIONS, (name, taken)
        assert all(a[1] is b[0] for a, b in itertools.pairwise(taken)), (name, taken)
    assert seen["normal"] == [(A, D)], seen
    assert seen["app error"] == [(A, D)], seen
    # After the last message, the client's http.disconnect may reach the receiver
    # before the request task stops it: SETTLED -> GONE, a step of the table.
    assert seen["streamed"][:2] == [(A, S), (S, D)], seen
    assert seen["streamed"][2:] in ([], [(D, G)]), seen
    assert seen["client leaves"] == [(A, S), (S, G)], seen
    assert finals == [D, D, G, D], finals


# --------------------------------------------------- C7 start_response phases


def _table_rows(doc: str) -> set[tuple[str, str]]:
    """The (phase, next phase) rows of the rst table in ``doc``; rows that re-raise are skipped."""
    rows = set()
    for line in doc.splitlines():
        cells = [cell.strip() for cell in line.strip().split("  ") if cell.strip()]
        if len(cells) == 3 and cells[0].startswith("``") and cells[2].startswith("``"):
            rows.add((cells[0].strip("`"), cells[2].split("``")[1]))
    return rows


def test_c7_start_response_phases_follow_the_table(
    make: Bridges, backend: str, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every phase change a response makes is a row of the table, and every row is taken.

    The table is not checked on each write of the phase (that would cost
    instructions on every request), so this test records every write of
    ``_Response.phase`` through a stand-in for its slot, request by request.
    """
    from asgibridge._wsgi import _response
    from asgibridge._wsgi._response import RESPONSE_TRANSITIONS, ResponsePhase, _Response

    N, P, S, D = ResponsePhase.NEW, ResponsePhase.PENDING, ResponsePhase.SENT, ResponsePhase.DONE
    slot = _Response.__dict__["phase"]
    writes: list[tuple[ResponsePhase | None, ResponsePhase]] = []

    class Recorded:
        """Stands in for the ``phase`` slot: stores through it and records (old, new)."""

        def __get__(self, obj: Any, owner: Any = None) -> Any:
            return self if obj is None else slot.__get__(obj, owner)

        def __set__(self, obj: Any, value: ResponsePhase) -> None:
            try:
                old = slot.__get__(obj, type(obj))
            except AttributeError:  # the constructor's first write
                old = None
            writes.append((old, value))
            slot.__set__(obj, value)

    monkeypatch.setattr(_Response, "phase", Recorded())

    def one_chunk(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello"]

    def replaced(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    def streamed(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"

    def stops_at_length(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        yield b"a"
        yield b"b"
        raise AssertionError("iterated past the declared Content-Length")

    def empty(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    def written(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])(b"w")
        return []

    def reraised(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    def twice(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    pathsend = make_scope(extensions={"http.response.pathsend": {}})
    cases: list[tuple[str, Any, Any, type[BaseException] | None, list[ResponsePhase]]] = [
        ("one chunk completes the body", one_chunk, None, None, [N, P, D]),
        ("exc_info replaces", replaced, None, None, [N, P, P, D]),
        ("streamed to the end", streamed, None, None, [N, P, S, D]),
        ("Content-Length reached", stops_at_length, None, None, [N, P, S, D]),
        ("empty body", empty, None, None, [N, P, D]),
        ("write()", written, None, None, [N, P, S, D]),
        ("file handed over", file_app(data_file, []), pathsend, None, [N, P, D]),
        ("exc_info after headers re-raises", reraised, None, KeyError, [N, P, S]),
        ("second call is an error", twice, None, AppProtocolError, [N, P]),
    ]
    taken: set[tuple[ResponsePhase | None, ResponsePhase]] = set()
    for name, app, scope, error, expected in cases:
        writes.clear()
        if error is None:
            assert request(backend, make(app), scope).complete, name
        else:
            with pytest.raises(error):
                request(backend, make(app), scope)
        assert [new for _, new in writes] == expected, name
        assert writes[0][0] is None, name  # one response per request, from NEW
        steps = set(writes[1:])
        assert steps <= RESPONSE_TRANSITIONS.keys(), (name, steps)
        taken |= steps
    assert taken == RESPONSE_TRANSITIONS.keys()
    # The module docstring's table shows the same transitions as the one in code.
    assert _response.__doc__ is not None
    assert _table_rows(_response.__doc__) == {(a.name, b.name) for a, b in RESPONSE_TRANSITIONS}
