"""The scenario app as a plain WSGI callable: no framework at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from .common import STARTED, STREAMS, digest, forever, sse

JSON = [("Content-Type", "application/json")]


def _json(start_response: Callable[..., Any], data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(status, [*JSON, ("Content-Length", str(len(body)))])
    return [body]


def _body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        return stream.read(int(length))  # type: ignore[no-any-return]
    if environ.get("wsgi.input_terminated"):
        return stream.read()  # type: ignore[no-any-return]
    return b""


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    root = environ.get("SCRIPT_NAME", "")
    if method == "GET" and path.startswith("/echo/"):
        return _json(start_response, {"name": path[6:], "q": query.get("q", [None])[0]})
    if method == "POST" and path == "/form":
        form = parse_qs(_body(environ).decode("latin-1"))
        return _json(start_response, {"a": form["a"][0], "b": form["b"][0]})
    if method == "POST" and path == "/json":
        data = json.loads(_body(environ))
        return _json(start_response, {"n": data["n"] + 1, "s": data["s"]})
    if method == "POST" and path == "/upload":
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length:
            left = [int(length)]

            def read(size: int) -> bytes:
                chunk: bytes = stream.read(min(size, left[0]))
                left[0] -= len(chunk)
                return chunk

            return _json(start_response, digest(read))
        return _json(start_response, digest(stream.read))
    if method == "GET" and path == "/sse":
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return sse(int(query.get("n", ["5"])[0]))
    if method == "GET" and path.startswith("/stream-forever/"):
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return forever(path.rsplit("/", 1)[1])
    if method == "GET" and path.startswith("/stream-status/"):
        return _json(start_response, {"state": STREAMS.get(path.rsplit("/", 1)[1])})
    if path == "/cookies/set":
        body = b'{"ok": true}'
        start_response(
            "200 OK",
            [*JSON, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")],
        )
        return [body]
    if path == "/cookies/read":
        jar: SimpleCookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        got = {k: (jar[k].value if k in jar else None) for k in ("a", "b")}
        return _json(start_response, got)
    if path == "/redirect":
        start_response("302 Found", [("Location", root + "/echo/target"), ("Content-Length", "0")])
        return []
    if path == "/teapot":
        start_response("418 I'm a teapot", [("X-Compat", "yes"), ("Content-Type", "text/plain")])
        return [b"short and stout"]
    if path == "/error":
        raise RuntimeError("compat matrix: a deliberate application error")
    if path == "/where":
        return _json(start_response, {"root": root, "url": root + "/where"})
    if path == "/lifespan":
        return _json(start_response, {"started": STARTED.get("value")})
    return _json(start_response, {"error": "not found"}, "404 Not Found")
