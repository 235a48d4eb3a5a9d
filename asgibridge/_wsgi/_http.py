"""What every ``WsgiToAsgi`` request path shares: its settings, the request's start, the replies.

Theory of operation
-------------------
``WsgiToAsgi.__call__`` (:mod:`asgibridge.wsgi`) looks the scope type up in
a small route table and awaits one function, ``route(bridge, scope,
receive, send)``:

* ``http``: the request path of the configured :class:`Executor`:
  :mod:`._thread` (``executor="thread"``) or :mod:`._greenlet`
  (``executor="greenlet"``). Each owns its request from there to the
  last message sent; the public adapter is entered once per request.
* ``lifespan``: :func:`._lifespan.serve_lifespan`.
* ``websocket``: :func:`refuse_websocket`.

A request path reads its settings from the bridge at request time, through
the :class:`Bridge` protocol, so options assigned after construction apply
to the next request. Both paths start the same way, inline (a call is about
0.3% of a thread-mode request and 1% of a greenlet-mode one): the bridge's
:class:`~asgibridge._codec.EnvironBuilder` builds the environ (pure), and
the request's ``Content-Length`` tells whether it has a body at all.

No body: ``Content-Length: 0``, or an HTTP/1.x GET or HEAD with neither
Content-Length nor Transfer-Encoding (RFC 9112 section 6.3; other methods
are left to the server's messages, as some ASGI servers and test clients
stream bodies without those headers; an HTTP/2 or HTTP/3 request may have
a body without either header). Such a request starts the app without
calling ``receive()``: on granian each call costs a loop iteration and a
wake-up from its Rust threads (issue 14). The server's empty
``http.request`` stays unread until a disconnect watcher calls
``receive()``. A request refused before the app runs (rule C21) is
answered by :func:`reject`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from .._codec import EnvironBuilder
from .._types import Message, Receive, Scope, Send, WSGIApp
from ..errors import ClientDisconnected, RequestRejected, ServerProtocolError

__all__ = [
    "BODYLESS_METHODS",
    "BODYLESS_PROTOCOLS",
    "Bridge",
    "Executor",
    "Hook",
    "answer",
    "body_message",
    "left_early",
    "refuse_websocket",
    "reject",
]

logger = logging.getLogger("asgibridge.wsgi")

Hook = Callable[[], Any]

# A request of these methods, with these SERVER_PROTOCOLs, and with neither
# Content-Length nor Transfer-Encoding has no body (the module docstring).
BODYLESS_METHODS = frozenset({"GET", "HEAD"})
BODYLESS_PROTOCOLS = frozenset({"HTTP/1.1", "HTTP/1.0"})


class Executor(NamedTuple):
    """One place where the WSGI app runs: its request path, and how it runs a lifespan hook.

    A new executor is one module that provides both, and one entry in
    ``WsgiToAsgi``'s executor table.
    """

    #: ``await serve(bridge, scope, receive, send)``: one HTTP request, start to end.
    serve: Callable[[Bridge, Scope, Receive, Send], Awaitable[None]]
    #: ``await call(bridge, fn)``: ``fn()`` run where the app runs; its result.
    call: Callable[[Bridge, Hook], Awaitable[Any]]


class Bridge(Protocol):
    """What the request paths read from a ``WsgiToAsgi`` (at request time)."""

    app: WSGIApp
    prefetch: int
    body_window: int
    body_timeout: float | None
    send_window: int
    send_window_bytes: int
    on_startup: tuple[Hook, ...]
    on_shutdown: tuple[Hook, ...]
    _environ: EnvironBuilder
    _executor: Executor
    #: The thread pool's admission once started, and the process that started it.
    _adm: Any
    _pool_pid: int

    @property
    def pool(self) -> Any:
        """The worker pool (thread mode)."""

    def _admission(self) -> Any:
        """The admission in front of the worker pool (thread mode), started on first use."""

    async def aclose(self) -> None:
        """Stop the worker threads without blocking the loop."""


def body_message(msg: Message) -> tuple[bytes, bool]:
    """(body, more_body) of an ``http.request`` message, or raise for anything else."""
    typ = msg.get("type")
    if typ == "http.request":
        return msg.get("body", b""), msg.get("more_body", False)
    if typ == "http.disconnect":
        raise ClientDisconnected("the client disconnected before sending the whole request body")
    raise ServerProtocolError(
        f"receive() returned a {typ!r} message during an HTTP request; the server sent "
        "something other than 'http.request' or 'http.disconnect'"
    )


def left_early(msg: Message) -> bool:
    """True if ``msg``, received before the app ran, says the client left (nothing to answer).

    :raises ServerProtocolError: ``msg`` is neither ``http.request`` nor ``http.disconnect``.
    """
    try:
        body_message(msg)
    except ClientDisconnected:
        return True
    return False


async def answer(send: Send, status: int, body: bytes) -> None:
    """Answer with a small plain-text response of our own, closing the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def reject(send: Send, exc: RequestRejected) -> None:
    """Answer a request refused before the app runs (rule C21), never calling the app."""
    logger.info("request rejected with %d: %s", exc.status, exc)
    reason = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}.get(
        exc.status, b"Rejected"
    )
    await answer(send, exc.status, reason + b": " + str(exc).encode("latin-1", "replace") + b"\n")


async def refuse_websocket(bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
    """Refuse a websocket: close it right after ``websocket.connect`` (rule C17)."""
    msg = await receive()
    if msg.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
    # anything else ("websocket.disconnect"): the client already left
