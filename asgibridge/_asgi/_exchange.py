"""One request through ``AsgiToWsgi``: the WSGI thread on one side, an ASGI task on the other.

Theory of operation
-------------------
Waking a sleeping thread on another CPU costs 25-30 us here, so the design
counts wake-ups. A plain request costs exactly two:

1. the WSGI thread builds the scope, reads a small request body itself (so
   the app's first ``receive()`` needs no hand-off, see :mod:`._request`),
   and wakes the loop *once* to create the ASGI task (an ``eventfd`` write
   where the loop can watch one, else one ``call_soon_threadsafe``; see
   :mod:`._launch`);
2. the task's ``send()`` calls append to a ``deque`` and wake the WSGI thread
   only when that deque was empty. ``http.response.start`` never wakes it:
   a WSGI server cannot send headers before the first body chunk anyway, so
   the start is delivered together with the first chunk (or with the end of
   the body, for a short response, which then goes back to the server as a
   one-item list). The items are described in :mod:`._response`.

:class:`Exchange` is one object per request, in three parts: this module (the
loop side: the ASGI task, ``receive()``, ``send()`` and the response
:class:`Phase`), :class:`~._request.RequestBody` (reading ``wsgi.input``) and
:class:`~._wsgi_thread.WsgiThread` (the WSGI thread's wait, which also serves
the app's thread-sensitive jobs). They are mixins of one class with one set
of slots, so crossing between them costs no attribute hop. The futures,
timers and task cancellation here are asyncio's on purpose: the bridge owns
its loop (an asyncio :class:`~asgibridge._core.BackgroundLoop`).

The response phase (rules A4, A5, A9)
    The loop side holds where the response stands as one :class:`Phase`,
    written only here, along :data:`TRANSITIONS`::

        NEW --start--> STARTED --body bytes, more--> STREAMING
        STARTED, STREAMING --more_body=False or pathsend--> COMPLETE
        NEW, STARTED, STREAMING --server closed the iterator--> GONE

    ``COMPLETE`` ends the WSGI response at once; the task keeps running for
    background work, optionally bounded by ``background_timeout``. ``GONE``
    cancels the task. Both are final. Once the body is consumed,
    ``receive()`` waits for either and then returns ``http.disconnect`` (A5).
    An app exception does not change the phase; the phase decides how it is
    reported (:func:`~._response.report_failure`, rule A6).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import os
from collections import deque
from typing import IO, Any

from .._core import HOME, ThreadHome, ThreadState
from .._types import Message
from ..errors import AppProtocolError, ClientDisconnected, SchedulerError
from ._bridge import Bridge
from ._request import RequestBody
from ._response import END, Failure, PathSend, report_failure
from ._wsgi_thread import WsgiThread

__all__ = ["COMPLETE", "GONE", "NEW", "STARTED", "STREAMING", "TRANSITIONS", "Exchange", "Phase"]

logger = logging.getLogger("asgibridge.asgi")


class Phase(enum.Enum):
    """Where the response stands, as the loop side sees it (see the module docstring)."""

    NEW = "new"  #: waiting for ``http.response.start``
    STARTED = "started"  #: started, no body bytes yet
    STREAMING = "streaming"  #: body bytes sent, more to come
    COMPLETE = "complete"  #: the app ended the response; background work may go on
    GONE = "gone"  #: the server closed the response early; the task is cancelled


# Module constants: the hot path compares identities against globals.
NEW, STARTED, STREAMING = Phase.NEW, Phase.STARTED, Phase.STREAMING
COMPLETE, GONE = Phase.COMPLETE, Phase.GONE

#: Every ``(from, to)`` the code may take; the tests walk the ones requests take.
TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (NEW, STARTED),
        (STARTED, STREAMING),
        (STARTED, COMPLETE),
        (STREAMING, COMPLETE),
        (NEW, GONE),  # not taken today: the server gets an iterable only after the start
        (STARTED, GONE),
        (STREAMING, GONE),
    }
)

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_NO_SCOPE: dict[str, Any] = {"method": "?", "path": "?"}


class Exchange(RequestBody, WsgiThread):
    """Everything one request shares between its WSGI thread and its ASGI task."""

    __slots__ = (
        "accepting",
        "body",
        "body_more",
        "bridge",
        "context",
        "done_fut",
        "input",
        "input_gone",
        "jobs_seen",
        "pending",
        "phase",
        "read_fut",
        "read_wanted",
        "remaining",
        "scope",
        "send_waiter",
        "start_headers",
        "start_status",
        "state",
        "task",
        "timer",
    )

    def __init__(self, bridge: Bridge, state: ThreadState, home: ThreadHome) -> None:
        # The ThreadHome fields, set here rather than by ThreadHome.__init__
        # (one call less per request); test_a1_exchange_init_sets_every_slot_it_owns
        # checks them. A thread's home shares its inbox (current_home, lanes), and
        # a slot read costs less than a threading.local one.
        self.inbox = home.inbox
        self.ident = home.ident
        self.name = home.name
        self.busy_job = None
        self.busy_since = 0.0
        # The bridge's settings (app, loop, post, buffer sizes) are read from
        # it where they are needed, not copied here: most requests need none.
        self.bridge = bridge
        self.state = state
        self.pending = deque()
        self.phase = NEW
        self.accepting = True
        self.jobs_seen = False
        self.read_wanted = False
        self.input_gone = False
        self.send_waiter = None
        self.read_fut = None
        self.done_fut: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.body = b""
        self.body_more = False
        self.input: IO[bytes] | None = None
        self.remaining = None
        self.start_status: Any = None
        self.start_headers: Any = None
        self.scope: dict[str, Any] = _NO_SCOPE
        self.context: contextvars.Context

    async def run(self) -> None:
        """The ASGI task: call the app, and turn how it ends into what the WSGI side needs."""
        HOME.set(self)
        try:
            await self.bridge._app3(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            phase = self.phase
            if phase is COMPLETE:
                pass  # background work cut short by background_timeout (already logged)
            elif phase is not GONE:
                # Not cancelled by us: the loop is shutting down under the request.
                self.push(
                    Failure(
                        SchedulerError(
                            "the request was cancelled because the AsgiToWsgi bridge was "
                            "closed while it was running"
                        )
                    )
                )
        except Exception as exc:
            self._failed(exc)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: report, then propagate
            self._failed(exc)
            raise
        else:
            phase = self.phase
            if phase is not COMPLETE and phase is not GONE:
                self._failed(
                    AppProtocolError(
                        "the ASGI application returned without completing the response "
                        + (
                            "(it never sent http.response.start)"
                            if phase is NEW
                            else "(no http.response.body message with more_body=False)"
                        )
                    )
                )
        finally:
            timer = self.timer
            if timer is not None:
                timer.cancel()
            self.bridge._launcher.tasks.discard(self.task)
            # Break the exchange <-> task cycle (the task's context holds this
            # exchange as HOME), so refcounting frees both without a GC pass.
            self.task = None
            if self.done_fut is not None or self.read_fut is not None:
                self._finished()

    def _failed(self, exc: BaseException) -> None:
        phase = self.phase
        report_failure(
            self, exc, gone=phase is GONE, complete=phase is COMPLETE, body_out=phase is STREAMING
        )

    def push(self, item: Any) -> None:
        """Append one item for the WSGI side, waking it if it may be waiting."""
        pending = self.pending
        pending.append(item)
        if len(pending) <= 1:
            self.inbox.wake()

    def _finished(self) -> None:
        """The response is over for the app: complete, failed, or the client left."""
        fut = self.done_fut
        if fut is not None and not fut.done():
            fut.set_result(None)
        fut2 = self.read_fut
        if fut2 is not None and not fut2.done():
            fut2.set_result(_DISCONNECT.copy())

    def _complete(self) -> None:
        self.phase = COMPLETE
        self._finished()
        if self.bridge._background_timeout is not None:
            self._bound_background()

    def _bound_background(self) -> None:
        """Cancel the task if it still runs ``background_timeout`` after the response."""
        bound = self.bridge._background_timeout
        assert bound is not None
        self.timer = self.bridge._aloop.call_later(bound, self._background_expired, bound)

    def _background_expired(self, bound: float) -> None:
        task = self.task
        if task is not None and not task.done():
            logger.warning(
                "background work of %s %s was still running %.3gs after the response "
                "ended; cancelling it (background_timeout=%r)",
                self.scope["method"],
                self.scope["path"],
                bound,
                bound,
            )
            task.cancel()

    def client_gone(self) -> None:
        """Loop callback: the WSGI server closed the response early (rule A4)."""
        if self.phase is COMPLETE:
            return  # the app is done with the response; let background work finish
        self.phase = GONE
        self._finished()
        waiter = self.send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        task = self.task
        if task is not None and not task.done():
            task.cancel()

    async def receive(self) -> Message:
        """The app's ``receive()``: body chunks, then ``http.disconnect`` (rules A3, A5)."""
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": body, "more_body": self.body_more}
        while self.body_more and self.phase is not COMPLETE and self.phase is not GONE:
            fut = self.read_fut
            if fut is not None:  # another receive() is reading: let it finish first
                await asyncio.wait((fut,))
                continue
            fut = self.bridge._aloop.create_future()
            self.read_fut = fut
            self.read_wanted = True
            self.inbox.wake()
            try:
                return await fut
            finally:
                self.read_fut = None
        if self.body is not None:  # delivered to a receive() that was cancelled
            return await self.receive()
        phase = self.phase
        if phase is not COMPLETE and phase is not GONE and not self.input_gone:
            fut2 = self.done_fut
            if fut2 is None or fut2.cancelled():  # a cancelled receive() cancels its future
                fut2 = self.done_fut = self.bridge._aloop.create_future()
            await fut2
        return _DISCONNECT.copy()

    async def send(self, message: Message) -> None:
        """The app's ``send()``: response messages become items for the WSGI side."""
        kind = message["type"]
        if kind == "http.response.body":
            phase = self.phase
            if phase is not STREAMING and phase is not STARTED:
                raise self._out_of_order(kind)
            body = message.get("body", b"")
            more = message.get("more_body", False)
            pending = self.pending
            if body:
                if body.__class__ is not bytes:
                    body = bytes(body)
                pending.append(body)
                if more:
                    if phase is STARTED:
                        self.phase = STREAMING
                    if len(pending) <= 1:
                        self.inbox.wake()
                    if len(pending) >= self.bridge._send_buffer:
                        await self._wait_for_room()
                    return
                pending.append(END)
                if len(pending) <= 2:
                    self.inbox.wake()
            elif more:
                return
            else:
                self.push(END)
            # self._complete(), inline: the end of every response passes here.
            self.phase = COMPLETE
            if self.done_fut is not None or self.read_fut is not None:
                self._finished()
            if self.bridge._background_timeout is not None:
                self._bound_background()
            return
        if kind == "http.response.start":
            if self.phase is not NEW:
                raise self._out_of_order(kind)
            status = message["status"]
            if status.__class__ is not int:
                raise AppProtocolError(
                    f"http.response.start has status {status!r}; it must be an int"
                )
            if message.get("trailers"):
                raise AppProtocolError(
                    "http.response.start asks for trailers, but this server does not "
                    "advertise the http.response.trailers extension"
                )
            self.start_status = status
            self.start_headers = message.get("headers", ())
            self.phase = STARTED
            return
        if kind == "http.response.pathsend":
            self._pathsend(message)
            return
        if self.phase is GONE:
            raise ClientDisconnected("the client went away; the response cannot be sent")
        raise AppProtocolError(
            f"unknown ASGI message type {kind!r} for an http scope; expected "
            "'http.response.start', 'http.response.body' or 'http.response.pathsend'"
        )

    def _pathsend(self, message: Message) -> None:
        if self.phase is not STARTED:  # not after body bytes either: they cannot be replaced
            raise self._out_of_order("http.response.pathsend")
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise AppProtocolError(
                f"http.response.pathsend needs an absolute file path as 'path', got {path!r}"
            )
        self.push(PathSend(path))
        self._complete()

    def _out_of_order(self, kind: str) -> BaseException:
        phase = self.phase
        if phase is GONE:
            return ClientDisconnected(
                f"cannot send {kind!r}: the client went away and the response was abandoned"
            )
        if phase is NEW:
            return AppProtocolError(f"{kind!r} sent before 'http.response.start'")
        if phase is COMPLETE:
            return AppProtocolError(f"{kind!r} sent after the response was complete")
        if kind == "http.response.start":
            return AppProtocolError("'http.response.start' sent twice")
        return AppProtocolError(f"{kind!r} sent after body data; it must replace the body")

    async def _wait_for_room(self) -> None:
        pending = self.pending
        limit = self.bridge._send_buffer
        loop = self.bridge._aloop
        while len(pending) >= limit and self.phase is STREAMING:
            fut: asyncio.Future[None] = loop.create_future()
            self.send_waiter = fut
            if len(pending) < limit:  # the WSGI side popped meanwhile
                self.send_waiter = None
                return
            try:
                await fut
            finally:
                self.send_waiter = None
        if self.phase is GONE:
            raise ClientDisconnected("the client went away; the response cannot be sent")
