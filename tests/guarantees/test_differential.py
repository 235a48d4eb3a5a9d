"""Differential tests: the same raw HTTP bytes through a bridge and through a reference server.

hypothesis generates raw HTTP/1.1 requests: methods (custom tokens too),
paths with percent-encoded and non-UTF-8 bytes, query strings, header sets
with repeats, several ``Cookie`` lines, underscores and non-ASCII (obs-text)
values, and bodies sent over the socket in pieces cut at random points.
Each request goes over a raw socket to two servers started once per module
on 127.0.0.1, port 0, and what the application sees is compared:

(a) ``WsgiToAsgi`` on uvicorn against the standard library's ``wsgiref``
    server: the environ the same WSGI app sees.
(b) ``AsgiToWsgi`` on gunicorn and on waitress against uvicorn itself: the
    scope the same ASGI app sees.

They must be equal apart from the deliberate differences listed below (the
same list is on the Guarantees page, ``docs/guarantees.md``). Each one is
applied as a small rewrite of the reference's view, written here from the
rule, independently of the bridge's code.

Deliberate differences, (a) WsgiToAsgi vs wsgiref
    D1 (C4)  Repeated request headers are joined with ``", "`` and ``Cookie``
             lines with ``"; "``; wsgiref joins both with ``","``.
    D2 (C5)  A header whose name has ``_`` or is not an ASCII token is
             dropped; wsgiref merges ``X_Foo`` into ``HTTP_X_FOO``.
    D3       No ``CONTENT_TYPE`` key when the request has no Content-Type
             (wsgiref invents ``text/plain``), and no ``CONTENT_LENGTH`` key
             when it has no Content-Length (wsgiref sets ``""``; PEP 3333
             allows either).
    D4       Header values are trimmed of SP and HTAB only (RFC 9110 OWS);
             wsgiref's ``str.strip()`` also eats ``\\x85`` and ``\\xa0``.
    D5       Server-specific keys are not compared: ``SERVER_NAME``,
             ``SERVER_PORT``, ``SERVER_SOFTWARE``, ``REMOTE_*``,
             ``GATEWAY_INTERFACE``, ``wsgi.multiprocess``, ``wsgi.multithread``,
             ``wsgi.input_terminated`` and the process environment wsgiref copies in.

Deliberate differences, (b) AsgiToWsgi vs uvicorn
    E1       WSGI carries one value per header name: the WSGI server has
             already joined repeats (``","`` or ``", "``), and the bridge passes
             that value on. Values are compared as lists split at ``,`` / ``;``.
    E2       Header names with ``_`` are dropped by gunicorn, and waitress
             folds them into the dash form; they are not generated for (b).
    E3       Framing is the WSGI server's business: ``transfer-encoding`` and,
             for a chunked request, ``content-length`` are not compared; the body is.
    E4       A path that is not valid UTF-8 after percent-decoding keeps its
             bytes as latin-1 characters in ``path`` (lossless, like ``raw_path``);
             uvicorn puts U+FFFD there.
    E5       Header order is not compared (a WSGI environ has none), nor
             ``asgi.spec_version``, ``server``, ``client`` ports, ``state``
             or ``extensions``.
    E6       ``X-Forwarded-*`` headers are not generated for (b): uvicorn
             trusts them from 127.0.0.1 and rewrites ``client`` and ``scheme``,
             and waitress removes them unless a trusted proxy is configured.

Requests that the servers themselves would refuse are not generated (raw
bytes >= 0x80 or controls in the request line, ``//`` at the start of the
path, even percent-encoded, which ``http.server`` and waitress collapse). Header names that are not
ASCII tokens cannot pass h11 or httptools, so rule C5's non-ASCII case is
checked in process: the bridge, given such names in its scope, must build the
environ wsgiref builds for the same request without them.

The runs are reproducible (``derandomize=True``, no example database) and
small by default; set ``ASGIBRIDGE_HYPOTHESIS=long`` for a long randomized
run (2,000 examples per test), or ``ASGIBRIDGE_DIFF_EXAMPLES=N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from asgibridge.asgi import AsgiToWsgi
from asgibridge.wsgi import WsgiToAsgi
from tests.support.asgi_servers import serve
from tests.support.drivers import asgi_call
from tests.support.wsgi_servers import gunicorn_server, waitress_server

TESTS = Path(__file__).resolve().parent
IO_TIMEOUT = 10.0

_LONG = os.environ.get("ASGIBRIDGE_HYPOTHESIS") == "long"
_EXAMPLES = int(os.environ.get("ASGIBRIDGE_DIFF_EXAMPLES", "2000" if _LONG else "60"))
DIFF_SETTINGS = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    derandomize=not _LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

# ------------------------------------------------------------------ requests

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH_CHARS = "abcXYZ019-._~!$&'()*+,;=:@"
_QUERY_CHARS = _PATH_CHARS + "/?"
# Field-value characters: visible ASCII but "," and ";" (so that joined
# values can be split again), inner spaces, and obs-text (0x80-0xFF).
_VALUE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ",;") + " \t"
_OBS_TEXT = "".join(chr(c) for c in range(0x80, 0x100))

# Names a real request might carry, in several spellings, plus generated tokens.
_NAMES = [
    "Accept",
    "accept",
    "User-Agent",
    "X-Custom",
    "x-custom",
    "X-CUSTOM",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "Accept-Language",
    "If-None-Match",
    "Authorization",
    "Cookie",
    "Cookie",
    "X-Dup",
    "X-Dup",
]
_UNDERSCORE_NAMES = ["X_Forwarded_For", "x_custom", "Content_Type", "X_Dup"]
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "M-SEARCH"]


@dataclass
class RawRequest:
    """One generated request and how its bytes are cut for sending."""

    method: str
    target: str  # path, then "?query" when there is one
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunked: bool = False
    cuts: list[int] = field(default_factory=list)

    @property
    def raw_path(self) -> bytes:
        return self.target.partition("?")[0].encode("ascii")

    @property
    def query(self) -> bytes:
        return self.target.partition("?")[2].encode("ascii")

    def wire(self, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        head = [f"{self.method} {self.target} HTTP/1.1".encode(), b"Host: example.test"]
        head += [name + b": " + value for name, value in [*self.headers, *extra]]
        if self.chunked:
            head.append(b"Transfer-Encoding: chunked")
            body = _chunk(self.body, self.cuts)
        else:
            if self.body or self.method in ("POST", "PUT"):
                head.append(b"Content-Length: %d" % len(self.body))
            body = self.body
        head.append(b"Connection: close")
        return b"\r\n".join(head) + b"\r\n\r\n" + body

    def label(self) -> None:
        """Tell hypothesis's statistics what kind of request this is."""
        names = [n.lower() for n, _ in self.headers]
        event(f"body={bool(self.body)} chunked={self.chunked} pieces={len(self.pieces())}")
        event(f"repeated header={len(names) != len(set(names))}")
        event(f"several cookies={names.count(b'cookie') > 1}")
        event(f"underscore name={any(b'_' in n for n in names)}")
        event(f"obs-text value={any(max(v, default=0) >= 0x80 for _, v in self.headers)}")
        try:
            unquote_to_bytes(self.raw_path).decode("utf-8")
            event("path decodes as UTF-8")
        except UnicodeDecodeError:
            event("path is not UTF-8")

    def pieces(self, extra: Iterable[tuple[bytes, bytes]] = ()) -> list[bytes]:
        data = self.wire(extra)
        points = sorted({c % len(data) for c in self.cuts if c % len(data)})
        return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _chunk(body: bytes, cuts: list[int]) -> bytes:
    points = sorted({c % len(body) for c in cuts if body and c % len(body)})
    parts = (
        [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)] if body else []
    )
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


def _escape(data: bytes) -> str:
    return "".join(f"%{b:02X}" if i % 2 else f"%{b:02x}" for i, b in enumerate(data))


_path_piece = st.one_of(
    st.text(_PATH_CHARS, min_size=1, max_size=6),
    st.binary(min_size=1, max_size=3).map(_escape),  # %FF, %2F, %00, UTF-8 or not
    st.sampled_from(["%C3%A9", "%E2%82%AC", "%2F", "%25", "%zz", "%4"]),
)
_segment = st.lists(_path_piece, max_size=4).map("".join)
# Never "//" at the start, even once decoded: http.server and waitress collapse it.
_path = (
    st.tuples(st.lists(_path_piece, min_size=1, max_size=4), st.lists(_segment, max_size=3))
    .map(lambda s: "/" + "/".join(["".join(s[0]), *s[1]]))
    .filter(lambda p: not unquote_to_bytes(p).startswith(b"//"))
)
_query = st.one_of(
    st.just(""),
    st.lists(
        st.one_of(
            st.text(_QUERY_CHARS, min_size=1, max_size=8),
            st.binary(min_size=1, max_size=2).map(_escape),
            st.sampled_from(["=", "&", "+", "a=1&b=2", "%26"]),
        ),
        max_size=5,
    ).map(lambda parts: "?" + "".join(parts)),
)


def _value(text: str) -> bytes:
    return text.strip(" \t").encode("latin-1")


_header_value = st.text(_VALUE_CHARS + _OBS_TEXT, max_size=20).map(_value)


def _header_name(underscores: bool, forwarded: bool = True) -> st.SearchStrategy[str]:
    names = _NAMES if forwarded else [n for n in _NAMES if not n.startswith("X-Forwarded")]
    options = [
        st.sampled_from(names),
        st.from_regex(r"\A[A-Za-z][A-Za-z0-9\-]{0,10}\Z"),
    ]
    if underscores:
        options.append(st.sampled_from(_UNDERSCORE_NAMES))
    return st.one_of(*options).filter(
        lambda n: _not_framing(n) and (forwarded or not n.lower().startswith("x-forwarded"))
    )


def _not_framing(name: str) -> bool:
    return name.lower() not in {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "http2-settings",
    }


@st.composite
def raw_requests(draw: st.DrawFn, side: str) -> RawRequest:
    """A request both servers accept, with its send cuts.

    ``side="wsgi"`` for (a): underscores in names, no chunked body (wsgiref has
    none). ``side="asgi"`` for (b): chunked bodies, no underscores (E2) and no
    ``X-Forwarded-*`` (E6).
    """
    asgi = side == "asgi"
    method = draw(st.sampled_from(_METHODS))
    target = draw(_path) + draw(_query)
    names = draw(st.lists(_header_name(not asgi, forwarded=not asgi), max_size=10))
    headers = [(name.encode("ascii"), draw(_header_value)) for name in names]
    if draw(st.booleans()):
        headers.append((b"Content-Type", draw(st.sampled_from(_CONTENT_TYPES))))
    body = draw(st.binary(max_size=3000)) if method not in ("GET", "OPTIONS") else b""
    is_chunked = asgi and bool(body) and draw(st.booleans())
    cuts = draw(st.lists(st.integers(min_value=1, max_value=4000), max_size=4))
    return RawRequest(method, target, headers, body, is_chunked, cuts)


_CONTENT_TYPES = [
    b"application/json",
    b"text/plain; charset=latin-1",
    b"multipart/form-data; boundary=x",
    b"application/x-www-form-urlencoded",
]


# -------------------------------------------------------------------- client


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def exchange(port: int, pieces: list[bytes]) -> Reply:
    """Send ``pieces`` one write at a time over a fresh connection; read the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.001)  # so that the server reads the pieces apart
            conn.sendall(piece)
        data = bytearray()
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        else:  # pragma: no cover - reported as a failure
            raise TimeoutError(f"no end of reply within {IO_TIMEOUT}s: {bytes(data[:200])!r}")
    return parse_reply(bytes(data))


def parse_reply(data: bytes) -> Reply:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no complete response head: {data[:300]!r}")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = [tuple(x.strip() for x in line.split(b":", 1)) for line in lines[1:]]
    names = {n.lower(): v for n, v in headers}
    if names.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = bytearray()
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if not size:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        return Reply(status, headers, bytes(body))  # type: ignore[arg-type]
    if b"content-length" in names:
        rest = rest[: int(names[b"content-length"])]
    return Reply(status, headers, rest)  # type: ignore[arg-type]


# ---------------------------------------------------------- (a) the WSGI side

# PEP 3333 CGI keys the two sides must agree on (D5 lists the ones left out).
_CGI = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_PROTOCOL",
)


def environ_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Answer with the parts of the environ that both servers must agree on, as JSON."""
    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length)) if length else b""
    seen = {
        key: value if isinstance(value, str) else f"<not a str: {value!r}>"
        for key, value in environ.items()
        if key in _CGI or key.startswith("HTTP_")
    }
    seen["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    seen["wsgi.version"] = list(environ["wsgi.version"])
    payload = json.dumps({"environ": seen, "body": body.hex()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


class _ReferenceHandler(WSGIRequestHandler):
    """wsgiref's handler with the deliberate differences D1-D4 applied to its parsed headers."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_environ(self) -> Environ:
        env = super().get_environ()
        for key in [k for k in env if k.startswith("HTTP_")]:
            del env[key]  # rebuilt below; also drops any HTTP_* copied from os.environ
        if self.headers.get("content-type") is None:
            env.pop("CONTENT_TYPE", None)  # D3
        if not env.get("CONTENT_LENGTH"):
            env.pop("CONTENT_LENGTH", None)  # D3
        for name, value in self.headers.items():  # wire order, repeats kept
            if not _TOKEN.fullmatch(name) or "_" in name:
                continue  # D2
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            key = "HTTP_" + key
            value = value.strip(" \t")  # D4
            if key in env:  # D1
                env[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                env[key] = value
        return env


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False


@contextlib.contextmanager
def reference_wsgi_server(app: Any) -> Iterator[int]:
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_ReferenceHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="reference-wsgiref"
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(IO_TIMEOUT)
        server.server_close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def wsgiref_port() -> Iterator[int]:
    with reference_wsgi_server(environ_app) as port:
        yield port


@pytest.fixture(scope="module")
def uvicorn_wsgi_port() -> Iterator[int]:
    bridge = WsgiToAsgi(environ_app)
    try:
        with serve(bridge, "uvicorn") as url:
            yield _port(url)
    finally:
        bridge.close()


def _seen(reply: Reply, who: str) -> dict[str, Any]:
    assert reply.status == 200, f"{who} answered {reply.status}: {reply.body[:500]!r}"
    return json.loads(reply.body)  # type: ignore[no-any-return]


@DIFF_SETTINGS
@given(request=raw_requests("wsgi"))
def test_c2_c4_c5_c6_environ_matches_wsgiref(
    request: RawRequest, wsgiref_port: int, uvicorn_wsgi_port: int
) -> None:
    """(a) WsgiToAsgi on uvicorn builds the environ wsgiref builds, apart from D1-D5."""
    request.label()
    pieces = request.pieces()
    reference = _seen(exchange(wsgiref_port, pieces), "wsgiref")
    bridged = _seen(exchange(uvicorn_wsgi_port, pieces), "WsgiToAsgi on uvicorn")
    assert bridged == reference, f"request: {request.wire()!r}"


# C5's non-ASCII names: no HTTP parser in front of the bridge lets them
# through, so the bridge is driven in process with the scope uvicorn would
# build if one did, and must build wsgiref's environ for the request without them.

_NON_ASCII_NAMES = [b"x-forwarded-\xdfl", b"x-\xe9t\xe9", b"\xffx", b"x-real-ip\x85", b"\xc3\xa9"]


def _scope_like_uvicorn(request: RawRequest, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    headers = [(b"host", b"example.test")]
    headers += [(n.lower(), v.strip(b" \t")) for n, v in [*request.headers, *extra]]
    if request.body or request.method in ("POST", "PUT"):
        headers.append((b"content-length", b"%d" % len(request.body)))
    headers.append((b"connection", b"close"))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": unquote(request.raw_path.decode("ascii")),
        "raw_path": request.raw_path,
        "query_string": request.query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


def call_asgi(app: Any, scope: dict[str, Any], body: bytes) -> Reply:
    """Run one http request through ``app`` in process; collect its answer."""
    result = asyncio.run(asgi_call(app, scope, [body], then=IO_TIMEOUT, timeout=IO_TIMEOUT))
    start = next(m for m in result.messages if m["type"] == "http.response.start")
    return Reply(start["status"], list(start.get("headers", [])), result.body)


@DIFF_SETTINGS
@given(
    request=raw_requests("wsgi"),
    extra=st.lists(st.tuples(st.sampled_from(_NON_ASCII_NAMES), _header_value), min_size=1),
)
def test_c5_non_ascii_header_names_never_reach_the_environ(
    request: RawRequest, extra: list[tuple[bytes, bytes]], wsgiref_port: int
) -> None:
    reference = _seen(exchange(wsgiref_port, request.pieces()), "wsgiref")
    bridge = WsgiToAsgi(environ_app, executor="greenlet")
    bridged = _seen(
        call_asgi(bridge, _scope_like_uvicorn(request, extra), request.body), "WsgiToAsgi"
    )
    assert bridged == reference, f"request: {request.wire(extra)!r}"


# --------------------------------------------------------- (b) the ASGI side


async def scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer with the scope and the whole request body, as JSON."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    seen = {
        "type": scope["type"],
        "asgi.version": scope["asgi"]["version"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "client_host": (scope.get("client") or ("",))[0],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body": body.hex(),
    }
    payload = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(payload)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def gunicorn_app() -> AsgiToWsgi:
    """What gunicorn loads: ``test_differential:gunicorn_app()``."""
    return AsgiToWsgi(scope_app)


@pytest.fixture(scope="module")
def uvicorn_asgi_port() -> Iterator[int]:
    with serve(scope_app, "uvicorn") as url:
        yield _port(url)


@pytest.fixture(scope="module", params=["gunicorn", "waitress"])
def wsgi_asgi_port(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param == "gunicorn":
        with gunicorn_server("test_differential:gunicorn_app()", chdir=TESTS) as served:
            yield _port(served.url)
        return
    bridge = AsgiToWsgi(scope_app)
    try:
        with waitress_server(bridge) as served:
            yield _port(served.url)
    finally:
        bridge.close()


def _expected_scope(seen: dict[str, Any], chunked: bool) -> dict[str, Any]:
    """uvicorn's scope with the deliberate differences E1-E5 applied."""
    out = dict(seen)
    out["headers"] = _header_lists(seen["headers"], chunked)
    raw = unquote_to_bytes(seen["raw_path"])
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        out["path"] = raw.decode("latin-1")  # E4
    return out


def _header_lists(headers: list[list[str]], chunked: bool) -> list[tuple[str, list[str]]]:
    """E1, E3, E5: values per name, split at "," and ";", names sorted."""
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        if name == "transfer-encoding" or (chunked and name == "content-length"):
            continue  # E3
        parts = [p.strip(" \t") for p in re.split(r"[,;]", value)]
        joined.setdefault(name, []).extend(parts)
    return sorted(joined.items())


@DIFF_SETTINGS
@given(request=raw_requests("asgi"))
def test_a3_a7_scope_matches_uvicorn(
    request: RawRequest, uvicorn_asgi_port: int, wsgi_asgi_port: int
) -> None:
    """(b) AsgiToWsgi on gunicorn / waitress builds the scope uvicorn builds, apart from E1-E6."""
    request.label()
    pieces = request.pieces()
    reference = _expected_scope(
        _seen(exchange(uvicorn_asgi_port, pieces), "uvicorn"), request.chunked
    )
    bridged = _seen(exchange(wsgi_asgi_port, pieces), "AsgiToWsgi")
    bridged["headers"] = _header_lists(bridged["headers"], request.chunked)
    assert bridged == reference, f"request: {request.wire()!r}"


# ------------------------------------------------------- the harness itself


def test_differential_harness_sees_a_difference(wsgiref_port: int) -> None:
    """A comparison that cannot fail proves nothing: a changed byte must show."""
    request = RawRequest("GET", "/a%FFb?x=1", [(b"X-A", b"1"), (b"X-A", b"2")], b"")
    one = _seen(exchange(wsgiref_port, request.pieces()), "wsgiref")
    assert one["environ"]["PATH_INFO"] == "/a\xffb"
    assert one["environ"]["HTTP_X_A"] == "1, 2"
    request.target = "/a%FEb?x=1"
    assert _seen(exchange(wsgiref_port, request.pieces()), "wsgiref") != one


def test_request_pieces_reassemble_to_the_wire_bytes() -> None:
    request = RawRequest("POST", "/p?q", [(b"A", b"b")], b"x" * 50, chunked=True, cuts=[3, 70, 7])
    assert b"".join(request.pieces()) == request.wire()
    assert len(request.pieces()) == 4
    assert _chunk(b"abcdef", [2, 4]) == b"2\r\nab\r\n2\r\ncd\r\n2\r\nef\r\n0\r\n\r\n"
    assert quote("/\xff", encoding="latin-1") == "/%FF"
