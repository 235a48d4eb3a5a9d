"""Greenlet mode: one ``WsgiToAsgi`` request with the app in a greenlet on the loop's thread.

Theory of operation
-------------------
Greenlet mode needs none of thread mode's machinery: the app runs in a
pooled greenlet on the loop's own thread (:func:`asgibridge._core.run_in_greenlet`),
and a transport operation is ``await_in_greenlet(send(...))``, about 1 us.
:func:`serve_greenlet` (the request task) builds the environ, takes the
first body message when the request has a body, and runs ``run_wsgi`` with
a :class:`GreenletExchange` as its transport:

* messages that complete the response wait in ``tail`` and are sent by the
  request task once the app returns (the app's ``close()`` runs first);
* a non-final message is sent at once, through the driver task; the first
  one starts a watcher for ``http.disconnect`` once the whole body is in,
  and every one lets the loop run other tasks (a CPU-bound generator must
  not starve the loop);
* ``wsgi.input`` reads receive through the driver task.

Before it ends a response whose declared body the app read in full, the
request task takes the body's end (:func:`_take_body_end`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio

from .._core import (
    Background,
    await_in_greenlet,
    checkpoint,
    current_loop_ref,
    run_in_greenlet,
    spawn,
)
from .._types import Message, Receive, Scope, Send
from ..errors import ClientDisconnected, RequestRejected
from ._http import (
    BODYLESS_METHODS,
    BODYLESS_PROTOCOLS,
    Bridge,
    Executor,
    Hook,
    body_message,
    left_early,
    reject,
)
from ._input import EMPTY_INPUT, Input
from ._response import run_wsgi

__all__ = ["BODY_END_WAIT", "GREENLET", "GreenletExchange", "call_in_greenlet", "serve_greenlet"]

logger = logging.getLogger("asgibridge.wsgi")

_EMPTY: dict[str, Any] = {}

#: Most seconds the greenlet path waits for the end of a body the app read in full.
BODY_END_WAIT = 1.0


async def serve_greenlet(bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request with the app in a greenlet on this thread (the hot path)."""
    # The start of every request path, inline (see _http: the body-less rule).
    try:
        environ = bridge._environ.build(scope)
    except RequestRejected as exc:
        await reject(send, exc)
        return
    environ["asgi.scope"] = scope
    length_text = environ.get("CONTENT_LENGTH")
    length = int(length_text) if length_text else None
    if length == 0 or (
        length is None
        and environ["REQUEST_METHOD"] in BODYLESS_METHODS
        and "HTTP_TRANSFER_ENCODING" not in environ
        and environ["SERVER_PROTOCOL"] in BODYLESS_PROTOCOLS
    ):
        ex = GreenletExchange(receive, send, scope.get("extensions") or _EMPTY, True, True)
        environ["wsgi.input"] = EMPTY_INPUT
    else:
        msg = await receive()
        if msg["type"] != "http.request" and left_early(msg):
            return
        data = msg.get("body", b"")
        more = msg.get("more_body", False)
        ex = GreenletExchange(receive, send, scope.get("extensions") or _EMPTY, not more, False)
        if data or more or length:
            environ["wsgi.input"] = Input(ex.pull, length, data, more)
        else:
            environ["wsgi.input"] = EMPTY_INPUT
    try:
        await run_in_greenlet(run_wsgi, bridge.app, environ, ex)
    except Exception:
        # The response may be complete (close() failed): deliver it first.
        if ex.tail and not ex.gone:
            await _send_all(send, ex.tail)
        raise
    finally:
        if ex.watcher is not None:
            ex.watcher.cancel()
    if ex.watcher is not None:
        await ex.watcher.join()
    if not ex.body_done and not ex.gone:
        await _take_body_end(ex, environ["wsgi.input"], receive)
    if not ex.gone:
        try:
            for msg in ex.tail:
                await send(msg)
        except OSError:
            return
    error = ex.send_error
    if error is not None and not isinstance(error, OSError):
        raise error


async def _send_all(send: Send, messages: list[Message]) -> None:
    for msg in messages:
        await send(msg)


async def _take_body_end(ex: GreenletExchange, inp: Any, receive: Receive) -> None:
    """Take the request's last ``http.request`` message before the response ends.

    The app read all ``CONTENT_LENGTH`` bytes, but the server has not handed
    over the body's end yet: over HTTP/2 the client's END_STREAM often comes in
    a DATA frame of its own. A native ASGI app reads up to ``more_body=False``
    before it answers, and hypercorn's HTTP/2 code fails (``KeyError``, upstream
    issue #329) when a response ends before that frame is processed. Thread
    mode reads ahead anyway. A body the app did not read to its end is left
    alone: waiting for it could wait for a client that waits for the response.
    """
    if inp.__class__ is not Input or not inp.complete:
        return
    with anyio.move_on_after(BODY_END_WAIT):
        try:
            msg = await receive()
        except Exception:
            return
        if msg.get("type") == "http.disconnect":
            ex._mark_gone("the client disconnected")
        elif not msg.get("more_body", False):
            ex.body_done = True


async def call_in_greenlet(bridge: Bridge, fn: Hook) -> Any:
    """Run ``fn()`` in a greenlet on this thread (lifespan hooks)."""
    return await run_in_greenlet(fn)


class GreenletExchange:
    """Per-request transport for greenlet mode: direct awaits through the driver task."""

    __slots__ = (
        "body_done",
        "extensions",
        "gone",
        "reason",
        "receive",
        "send",
        "send_error",
        "tail",
        "unread",
        "watcher",
    )

    def __init__(
        self,
        receive: Receive,
        send: Send,
        extensions: Mapping[str, Any],
        body_done: bool,
        unread: bool,
    ) -> None:
        self.receive = receive
        self.send = send
        self.extensions = extensions
        self.body_done = body_done
        self.tail: list[Message] = []
        self.gone = False
        self.reason = ""
        self.send_error: BaseException | None = None
        self.watcher: Background | None = None
        # True while the server's (empty) http.request has not been received
        # (a request without a body starts the app without calling receive()).
        self.unread = unread

    def push(self, messages: list[Message], final: bool, nbytes: int) -> None:
        """Final messages wait for the driver; others are sent now, through the driver task."""
        if self.gone:
            raise ClientDisconnected(self.reason)
        if final:
            self.tail.extend(messages)
        else:
            await_in_greenlet(self._send_now(messages, True))

    def push_wait(self, messages: list[Message]) -> None:
        """Send ``messages`` now and return once ``send()`` has taken them."""
        if self.gone:
            raise ClientDisconnected(self.reason)
        await_in_greenlet(self._send_now(messages, False))

    async def _send_now(self, messages: list[Message], streaming: bool) -> None:
        send = self.send
        try:
            for msg in messages:
                await send(msg)
        except Exception as exc:
            self.send_error = exc
            self._mark_gone(f"sending the response failed: {exc!r}")
            raise ClientDisconnected(self.reason) from exc
        if streaming:
            ref = current_loop_ref()
            if self.watcher is None and self.body_done:
                self.watcher = spawn(ref, self._watch)
            # A CPU-bound generator must not starve the loop (and the watcher).
            await checkpoint(ref)

    def pull(self) -> tuple[bytes, bool]:
        """The next request body chunk, received through the driver task."""
        if self.body_done:
            return b"", False
        if self.gone:
            raise ClientDisconnected(self.reason)
        try:
            data, more = body_message(await_in_greenlet(self.receive()))
        except ClientDisconnected as exc:
            self._mark_gone(str(exc))
            raise
        if not more:
            self.body_done = True
        return data, more

    def _mark_gone(self, reason: str) -> None:
        if not self.gone:
            self.gone = True
            self.reason = reason

    async def _watch(self) -> None:
        """After the whole body has arrived, wait for ``http.disconnect``."""
        try:
            msg = await self.receive()
            if self.unread and msg.get("type") == "http.request" and not msg.get("more_body"):
                self.unread = False  # the body-less request's own message
                msg = await self.receive()
            if msg.get("type") == "http.disconnect":
                self._mark_gone("the client disconnected")
            else:
                # Nothing may follow the last body chunk but http.disconnect.
                logger.warning(
                    "receive() returned %r after the request body ended; no longer "
                    "watching for a disconnect",
                    msg.get("type"),
                )
        except Exception as exc:
            self._mark_gone(f"receive() failed: {exc!r}")


#: Greenlet mode, as ``WsgiToAsgi``'s executor table names it.
GREENLET = Executor(serve_greenlet, call_in_greenlet)
