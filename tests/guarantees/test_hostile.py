"""Hostile responses from applications, in both directions, read as raw bytes off the socket.

Every case here is an application that breaks its protocol while answering:
a malformed status; CR, LF or NUL in a header name or value; text that is not
latin-1; ``str`` body chunks; a body shorter or longer than its
Content-Length; each misuse of ``start_response`` (WSGI) or of the
``http.response.*`` messages (ASGI).

Each must end in a 500 (when nothing was sent yet) or an aborted response
(when the headers were out), with exactly one log record of WARNING or worse
across every logger, the server's included; never a hang; and never bytes on
the wire that the app did not mean: no header the app's CR/LF tried to
inject, no byte past a declared Content-Length, no part of a body whose
headers were refused.

WsgiToAsgi runs on uvicorn (h11, thread executor); AsgiToWsgi runs on
waitress, which writes whatever it is given, so the bridge is the only guard.
Both servers run in this process, so their logs are counted.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from asgibridge.asgi import AsgiToWsgi
from asgibridge.wsgi import WsgiToAsgi
from tests.support.asgi_servers import serve
from tests.support.logs import WAIT, LogCapture, capture, wait_for
from tests.support.wsgi_servers import waitress_server, wsgiref_server

SECRET = b"SECRET-BODY"  # the body of every hostile response: it must not reach the wire
Environ = dict[str, Any]
StartResponse = Callable[..., Any]


# --------------------------------------------------------------- helpers


def raw_get(port: int, path: str) -> bytes:
    """One request with ``Connection: close``; every byte the server sent, until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                return bytes(data)
            data += chunk
    raise AssertionError(f"the server did not close within {WAIT}s: {bytes(data)!r}")


def split(raw: bytes) -> tuple[int, list[bytes], bytes, bool]:
    """(status, header lines, body, complete) of one raw HTTP/1.1 response."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {raw!r}"
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = lines[1:]
    lower = [h.lower() for h in headers]
    if b"transfer-encoding: chunked" in lower:
        body = bytearray()
        while True:
            size_line, crlf, rest = rest.partition(b"\r\n")
            if not crlf:
                return status, headers, bytes(body), False
            size = int(size_line, 16)
            if size == 0:
                return status, headers, bytes(body), rest == b"\r\n"
            if len(rest) < size + 2:
                return status, headers, bytes(body + rest[:size]), False
            body += rest[:size]
            rest = rest[size + 2 :]
    for h in lower:
        if h.startswith(b"content-length:"):
            n = int(h.split(b":", 1)[1])
            assert len(rest) <= n, f"bytes past Content-Length {n}: {rest!r}"
            return status, headers, rest, len(rest) == n
    return status, headers, rest, True


def check(raw: bytes, expect: str, log: LogCapture) -> None:
    """The response is a clean 500 or an aborted one, and nothing hostile reached the wire."""
    status, headers, _, complete = split(raw)
    if expect == "500":
        assert status == 500 and complete, raw
        assert SECRET not in raw, raw
    else:
        assert expect == "abort"
        assert not complete, f"the response should have been aborted: {raw!r}"
    for line in headers:  # every header line is a well-formed field line
        name, colon, _ = line.partition(b":")
        assert colon and name and b" " not in name and b"\x00" not in line, raw
        assert b"injected" not in line.lower(), raw
    lines = log.lines()
    assert len(lines) == 1, f"expected one log record, got {len(lines)}: {lines}"


# =============================================================================
# WsgiToAsgi on uvicorn: hostile WSGI apps
# =============================================================================


def _start(status: Any, headers: Any) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [SECRET]

    return app


def _str_body(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["text, not bytes"]


def _str_body_later(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first chunk "
    yield "then text"


def _short(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "100")])
    return [b"only 15 bytes.."]


def _long(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "5")])
    return iter([b"12345EXTRA BYTES", b"MORE EXTRA"])


def _no_reason(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200", [("Content-Length", "2")])
    return [b"ok"]


def _no_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return [SECRET]


def _twice(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [SECRET]


def _exc_info_after_body(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first chunk "
    try:
        raise ValueError("late failure")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())
    yield SECRET


def _write_str(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _WritesText(start_response("200 OK", []))


class _WritesText:
    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self.write = write

    def __iter__(self) -> Iterator[bytes]:
        self.write("text written")  # str to write()
        yield SECRET


def _none(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return None


WSGI_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    # malformed status
    "status-letters": (_start("abc OK", []), "500"),
    "status-two-digits": (_start("20 OK", []), "500"),
    "status-four-digits": (_start("2000 OK", []), "500"),
    "status-crlf": (_start("200 OK\r\nX-Injected: 1", []), "500"),
    "status-bytes": (_start(b"200 OK", []), "500"),
    "status-int": (_start(200, []), "500"),
    # CR, LF, NUL in names and values
    "name-crlf": (_start("200 OK", [("X-A\r\nX-Injected", "v")]), "500"),
    "name-nul": (_start("200 OK", [("X-A\x00", "v")]), "500"),
    "name-space": (_start("200 OK", [("X A", "v")]), "500"),
    "name-colon": (_start("200 OK", [("X:A", "v")]), "500"),
    "name-empty": (_start("200 OK", [("", "v")]), "500"),
    "value-crlf": (_start("200 OK", [("X-A", "v\r\nX-Injected: 1")]), "500"),
    "value-lf": (_start("200 OK", [("X-A", "v\nX-Injected: 1")]), "500"),
    "value-cr": (_start("200 OK", [("X-A", "v\rX-Injected: 1")]), "500"),
    "value-nul": (_start("200 OK", [("X-A", "v\x00")]), "500"),
    "value-vt": (_start("200 OK", [("X-A", "v\x0b")]), "500"),
    "value-del": (_start("200 OK", [("X-A", "v\x7f")]), "500"),
    # not latin-1, not str
    "value-euro": (_start("200 OK", [("X-A", "\u20ac")]), "500"),
    "name-non-latin1": (_start("200 OK", [("X-\u20ac", "v")]), "500"),
    "value-bytes": (_start("200 OK", [("X-A", b"v")]), "500"),
    "header-not-a-pair": (_start("200 OK", [("X-A",)]), "500"),
    "headers-not-a-list": (_start("200 OK", "X-A: v"), "500"),
    # body chunks
    "str-body": (_str_body, "500"),
    "str-body-later": (_str_body_later, "abort"),
    "body-none": (_none, "500"),
    # Content-Length mismatches
    "content-length-short": (_short, "abort"),
    "content-length-bad": (_start("200 OK", [("Content-Length", "12abc")]), "500"),
    "content-length-negative": (_start("200 OK", [("Content-Length", "-1")]), "500"),
    # start_response misuse
    "no-start_response": (_no_start, "500"),
    "start_response-twice": (_twice, "500"),
    "exc_info-after-body": (_exc_info_after_body, "abort"),
    "write-str": (_write_str, "500"),
}


def hostile_wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    name = environ["PATH_INFO"].strip("/")
    if name == "long":
        return _long(environ, start_response)
    if name == "no-reason":
        return _no_reason(environ, start_response)
    if name == "padded":
        start_response("200 OK", [("Set-Cookie", " a=b; Path=/"), ("Content-Length", "2 ")])
        return [b"ok"]
    case = WSGI_CASES.get(name)
    if case is None:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    return case[0](environ, start_response)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def uvicorn_port() -> Iterator[int]:
    bridge = WsgiToAsgi(hostile_wsgi)
    try:
        with serve(bridge, "uvicorn") as url:
            yield int(url.rsplit(":", 1)[1])
    finally:
        bridge.close()


@pytest.mark.parametrize(
    ("case", "expect"), [(k, v[1]) for k, v in WSGI_CASES.items()], ids=list(WSGI_CASES)
)
def test_c3_c7_c16_c22_hostile_wsgi_response(uvicorn_port: int, case: str, expect: str) -> None:
    with capture() as log:
        raw = raw_get(uvicorn_port, f"/{case}")
        wait_for(lambda: len(log.lines()) >= 1)
        time.sleep(0.05)  # a second record, if any, follows at once
    check(raw, expect, log)


def test_c16_body_longer_than_content_length_is_cut(uvicorn_port: int) -> None:
    """Never a byte past the declared length; the cut is logged once."""
    with capture() as log:
        raw = raw_get(uvicorn_port, "/long")
        wait_for(lambda: len(log.lines()) >= 1)
        time.sleep(0.05)
    status, _, body, complete = split(raw)
    assert (status, body, complete) == (200, b"12345", True)
    assert b"EXTRA" not in raw
    assert len(log.lines()) == 1, log.lines()


def test_c7_status_without_reason_phrase_is_accepted(uvicorn_port: int) -> None:
    """Lenient on purpose, like gunicorn: "200" is a valid code, and the wire gets "200 OK"."""
    with capture() as log:
        raw = raw_get(uvicorn_port, "/no-reason")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert split(raw)[2:] == (b"ok", True)
    assert log.lines() == []


def test_hostile_wsgi_server_still_answers(uvicorn_port: int) -> None:
    """After every hostile case, the same server answers a plain request."""
    status, _, body, complete = split(raw_get(uvicorn_port, "/fine"))
    assert (status, body, complete) == (200, b"ok", True)


# =============================================================================
# AsgiToWsgi on waitress: hostile ASGI apps
# =============================================================================


def _messages(*messages: dict[str, Any]) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    return app


def _start_msg(status: Any = 200, headers: Any = ()) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


_BODY = {"type": "http.response.body", "body": SECRET}
_MORE = {"type": "http.response.body", "body": b"first chunk ", "more_body": True}

ASGI_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    # malformed status
    "status-99": (_messages(_start_msg(99), _BODY), "500"),
    "status-1000": (_messages(_start_msg(1000), _BODY), "500"),
    "status-str": (_messages(_start_msg("200"), _BODY), "500"),
    "status-none": (_messages(_start_msg(None), _BODY), "500"),
    "status-float": (_messages(_start_msg(200.5), _BODY), "500"),
    # CR, LF, NUL, space, colon in names; controls in values
    "name-crlf": (_messages(_start_msg(200, [(b"x-a\r\nx-injected", b"v")]), _BODY), "500"),
    "name-nul": (_messages(_start_msg(200, [(b"x-a\x00", b"v")]), _BODY), "500"),
    "name-space": (_messages(_start_msg(200, [(b"x a", b"v")]), _BODY), "500"),
    "name-colon": (_messages(_start_msg(200, [(b"x:a", b"v")]), _BODY), "500"),
    "name-empty": (_messages(_start_msg(200, [(b"", b"v")]), _BODY), "500"),
    "value-crlf": (_messages(_start_msg(200, [(b"x-a", b"v\r\nx-injected: 1")]), _BODY), "500"),
    "value-lf": (_messages(_start_msg(200, [(b"x-a", b"v\nx-injected: 1")]), _BODY), "500"),
    "value-nul": (_messages(_start_msg(200, [(b"x-a", b"v\x00")]), _BODY), "500"),
    "value-vt": (_messages(_start_msg(200, [(b"x-a", b"v\x0b")]), _BODY), "500"),
    "value-del": (_messages(_start_msg(200, [(b"x-a", b"v\x7f")]), _BODY), "500"),
    # not bytes
    "name-str": (_messages(_start_msg(200, [("x-a", b"v")]), _BODY), "500"),
    "value-str": (_messages(_start_msg(200, [(b"x-a", "v")]), _BODY), "500"),
    "header-not-a-pair": (_messages(_start_msg(200, [(b"x-a",)]), _BODY), "500"),
    "str-body": (_messages(_start_msg(), {"type": "http.response.body", "body": "text"}), "500"),
    "str-body-later": (
        _messages(_start_msg(), _MORE, {"type": "http.response.body", "body": "text"}),
        "abort",
    ),
    # Content-Length mismatches
    "content-length-short": (
        _messages(
            _start_msg(200, [(b"content-length", b"100")]),
            {"type": "http.response.body", "body": b"short"},
        ),
        "abort",
    ),
    "content-length-bad": (
        _messages(_start_msg(200, [(b"content-length", b"12abc")]), _BODY),
        "500",
    ),
    # message misuse
    "body-before-start": (_messages(_BODY), "500"),
    "start-twice": (_messages(_start_msg(), _start_msg(), _BODY), "500"),
    "unknown-message": (_messages(_start_msg(), {"type": "http.response.nonsense"}), "500"),
    "start-then-return": (_messages(_start_msg()), "500"),
    "body-then-return": (_messages(_start_msg(), _MORE), "abort"),
}


async def hostile_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    name = scope["path"].strip("/")
    if name == "padded":
        await send(_start_msg(200, [(b"x-a", b" \tv \t"), (b"content-length", b"2")]))
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if name == "long":
        await send(_start_msg(200, [(b"content-length", b"5")]))
        await send({"type": "http.response.body", "body": b"12345EXTRA BYTES"})
        return
    if name == "long-streamed":
        await send(_start_msg(200, [(b"Content-Length", b"5")]))
        for chunk in (b"123", b"45EXTRA", b"MORE", b""):
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(chunk)})
        return
    case = ASGI_CASES.get(name)
    if case is None:
        await send(_start_msg(200, [(b"content-length", b"2")]))
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await case[0](scope, receive, send)


@pytest.fixture(scope="module")
def waitress_port() -> Iterator[int]:
    bridge = AsgiToWsgi(hostile_asgi)
    try:
        with waitress_server(bridge) as served:
            yield int(served.url.rsplit(":", 1)[1])
    finally:
        bridge.close()


@pytest.mark.parametrize(
    ("case", "expect"), [(k, v[1]) for k, v in ASGI_CASES.items()], ids=list(ASGI_CASES)
)
def test_a6_a11_hostile_asgi_response(waitress_port: int, case: str, expect: str) -> None:
    with capture() as log:
        raw = raw_get(waitress_port, f"/{case}")
        wait_for(lambda: len(log.lines()) >= 1)
        time.sleep(0.05)
    check(raw, expect, log)


def test_a11_body_longer_than_content_length_sends_no_extra_bytes(waitress_port: int) -> None:
    with capture() as log:
        raw = raw_get(waitress_port, "/long")
        wait_for(lambda: len(log.lines()) >= 1)
        time.sleep(0.05)
    status, _, body, complete = split(raw)
    assert (status, body, complete) == (200, b"12345", True)
    assert b"EXTRA" not in raw
    assert len(log.lines()) <= 1, log.lines()


def test_hostile_asgi_server_still_answers(waitress_port: int) -> None:
    status, _, body, complete = split(raw_get(waitress_port, "/fine"))
    assert (status, body, complete) == (200, b"ok", True)


@pytest.mark.parametrize("path", ["/long", "/long-streamed"])
def test_a14_body_past_content_length_is_cut_on_wsgiref(path: str) -> None:
    """wsgiref writes whatever the iterable yields: the bridge never yields past the
    app's Content-Length, and says so once."""
    bridge = AsgiToWsgi(hostile_asgi)
    try:
        with capture() as log, wsgiref_server(bridge) as served:
            port = int(served.url.rsplit(":", 1)[1])
            raw = raw_get(port, path)
            again = raw_get(port, "/fine")  # and the server carries on
    finally:
        bridge.close()
    assert raw.endswith(b"\r\n\r\n12345"), raw
    assert b"EXTRA" not in raw and b"MORE" not in raw
    assert again.endswith(b"ok"), again
    lines = [line for line in log.lines() if "more body than its Content-Length" in line]
    assert len(lines) == 1, log.lines()


# =============================================================================
# Header values that are only badly dressed, and hostile request framing
# =============================================================================


def test_c22_response_header_values_lose_surrounding_whitespace(uvicorn_port: int) -> None:
    """Django's Set-Cookie has a leading space; h11 refuses it, so the bridge strips it."""
    with capture() as log:
        raw = raw_get(uvicorn_port, "/padded")
    status, headers, body, complete = split(raw)
    assert (status, body, complete) == (200, b"ok", True)
    assert b"set-cookie: a=b; Path=/" in [h.lower()[:11] + h[11:] for h in headers], headers
    assert log.lines() == []


def test_a11_response_header_values_lose_surrounding_whitespace(waitress_port: int) -> None:
    with capture() as log:
        raw = raw_get(waitress_port, "/padded")
    status, headers, body, complete = split(raw)
    assert (status, body, complete) == (200, b"ok", True)
    assert b"x-a: v" in [h.lower() for h in headers], headers
    assert log.lines() == []


@pytest.mark.parametrize("length", ["1_0", "+5", "5 ", "0x5", "\u0665"])
def test_a13_content_length_is_digits_only_on_wsgiref(length: str) -> None:
    """wsgiref passes any Content-Length text on: the bridge answers 400 without the app."""
    called: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            called.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": SECRET})

    bridge = AsgiToWsgi(app, lifespan="off")
    try:
        with wsgiref_server(bridge) as served:
            port = int(served.url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
                conn.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                    + length.encode("utf-8")
                    + b"\r\nConnection: close\r\n\r\n0123456789"
                )
                raw = b""
                while chunk := conn.recv(65536):
                    raw += chunk
    finally:
        bridge.close()
    assert raw.split(b" ", 2)[1] == b"400", raw
    assert SECRET not in raw and called == []
