"""A raw WSGI "hello" app, and the same app behind each WSGI -> ASGI bridge.

Used by ``benchmarks/wsgi_e2e.py``; any of these serves on uvicorn::

    uvicorn examples.wsgi_hello:asgi_thread      # asgibridge, thread mode
    uvicorn examples.wsgi_hello:asgi_greenlet    # asgibridge, greenlet mode
    uvicorn examples.wsgi_hello:a2wsgi_app       # a2wsgi (if installed)
    uvicorn examples.wsgi_hello:asgiref_app      # asgiref (if installed)
    uvicorn examples.wsgi_hello:native_asgi      # a native ASGI hello, for scale

``echo_thread`` / ``echo_greenlet`` serve an app that echoes the request body
chunk by chunk (``benchmarks/wsgi_memory.py``). The peers are imported only
when their name is looked up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgibridge.wsgi import WsgiToAsgi

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI hello app: 200, text/plain, 13 bytes."""
    start_response("200 OK", HEADERS)
    return [BODY]


asgi_thread = WsgiToAsgi(app)
asgi_greenlet = WsgiToAsgi(app, executor="greenlet")

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def native_asgi(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The same hello written as a native ASGI app (the ceiling for any bridge)."""
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Echo the request body back, 64 KiB at a time (used by benchmarks/wsgi_memory.py)."""
    stream = environ["wsgi.input"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def chunks() -> Iterable[bytes]:
        while chunk := stream.read(65536):
            yield chunk

    return chunks()


echo_thread = WsgiToAsgi(echo_app)
echo_greenlet = WsgiToAsgi(echo_app, executor="greenlet")


def __getattr__(name: str) -> Any:
    """The peers, built on first use: ``a2wsgi_app`` and ``asgiref_app``."""
    if name == "a2wsgi_app":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(app)  # type: ignore[arg-type]
    if name == "asgiref_app":
        from asgiref.wsgi import WsgiToAsgi as AsgirefWsgiToAsgi

        return AsgirefWsgiToAsgi(app)  # type: ignore[no-untyped-call]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
