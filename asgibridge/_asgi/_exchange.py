"""One request through ``AsgiToWsgi``: the WSGI thread on one side, an ASGI task on the other.

Theory of operation
-------------------
Waking a sleeping thread on another CPU costs 25-30 us here, so the design
counts wake-ups. A plain request costs exactly two:

1. the WSGI thread builds the scope, reads a small request body itself (so
   the app's first ``receive()`` needs no hand-off), and posts *one* callback
   to the loop that creates the ASGI task;
2. the task's ``send()`` calls append to a ``deque`` and wake the WSGI thread
   only when that deque was empty. ``http.response.start`` never wakes it:
   a WSGI server cannot send headers before the first body chunk anyway, so
   the start is delivered together with the first chunk (or with the end of
   the body, for a short response, which then goes back to the server as a
   one-item list).

The WSGI thread sleeps on its core :class:`~asgibridge._core._inbox.Inbox`,
whose wake-up is an ``eventfd`` write that releases the GIL for the system
call (waking a ``SimpleQueue`` or ``Lock`` waiter happens with the GIL held,
and under gunicorn that cross-CPU wake was a fifth of all GIL time). A
wake-up is only a hint; the data lives in the deque, and the eventfd counter
means a hint is never lost, whatever the WSGI thread was doing.

While it waits, the WSGI thread also runs thread-sensitive ``sync_to_async``
jobs sent by the app: the request task's home is the :class:`Exchange`
itself, so such calls run on the request's own sync thread, as they would
under ``async_to_sync``. Once the WSGI side is finished with the request, the
exchange stops accepting jobs and any later ones (from background work) go to
the process-wide lane instead.

Request body (rules A3, A5)
    Up to ``read_chunk_size`` bytes are read before the task starts: a whole
    small body of known length, or the start of a chunked one
    (``wsgi.input_terminated``; a GET or HEAD counts only with a
    ``Transfer-Encoding`` header, since gunicorn sets the flag on every
    request). The rest is read on demand: ``receive()`` sets ``read_wanted``
    and wakes the WSGI thread, which reads one chunk and posts it back. With
    neither ``CONTENT_LENGTH`` nor ``wsgi.input_terminated`` the body is
    empty. Once the body is consumed, ``receive()`` waits for the response to
    finish or the client to leave and then returns ``http.disconnect``.

Backpressure (rule A8)
    At most ``limit`` body messages wait in the deque. A ``send()`` that
    finds it full waits on a future; the WSGI thread resolves it once the
    deque has drained to ``low``, so one loop wake-up buys ``limit - low``
    messages. The handshake is lock-free: ``send()`` publishes its future and
    then re-checks the length; the WSGI thread pops and then reads the
    future. Under the GIL one of the two always sees the other.

End of the response (rules A4, A6, A9)
    ``more_body=False`` (or ``http.response.pathsend``) ends the WSGI response
    at once; the task keeps running for background work, optionally bounded.
    If the server closes the iterator before that, the task is cancelled. An
    exception before the first body chunk becomes a 500 (logged here, and
    passed to ``start_response`` as ``exc_info``); after it, the iterator
    re-raises it so the server drops the connection, and the server logs it:
    every error is logged exactly once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import IO, Any

from .._core import HOME, Job, ThreadHome, default_scheduler, run_job
from ..errors import AppProtocolError, ClientDisconnected, SchedulerError

__all__ = [
    "END",
    "Exchange",
    "Failure",
    "FileBody",
    "PathSend",
    "ResponseBody",
]

logger = logging.getLogger("asgibridge.asgi")

Message = MutableMapping[str, Any]
#: An ASGI 3 application. Typed loosely on purpose: frameworks declare scopes and
#: messages as dicts, MutableMappings or TypedDicts, and all of them must be accepted.
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]

# Loop-side phases of the response.
NEW, STARTED, COMPLETE, GONE = 0, 1, 2, 3

#: In ``pending``: the response body is complete.
END = object()

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_NO_SCOPE: dict[str, Any] = {"method": "?", "path": "?"}

# Guards the hand-over of thread-sensitive jobs against the end of a request
# (taken once per request and once per job; never contended for long).
_home_lock = threading.Lock()


class Failure:
    """In ``pending``: the app failed before finishing the response."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class PathSend:
    """In ``pending``: the body is the file at ``path`` (``http.response.pathsend``)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class Exchange(ThreadHome):
    """Everything one request shares between its WSGI thread and its ASGI task.

    As a :class:`~asgibridge._core.ThreadHome` it is also where the task's
    thread-sensitive ``sync_to_async`` calls run: on the WSGI thread, while
    that thread is serving the request.
    """

    __slots__ = (
        "accepting",
        "app",
        "body",
        "body_more",
        "bridge",
        "chunk_size",
        "context",
        "done_fut",
        "input",
        "input_gone",
        "jobs_seen",
        "limit",
        "loop",
        "low",
        "pending",
        "phase",
        "post",
        "read_fut",
        "read_wanted",
        "remaining",
        "scope",
        "send_waiter",
        "sent_body",
        "start_headers",
        "start_status",
        "state",
        "task",
        "timer",
    )

    def __init__(
        self,
        bridge: Any,
        state: Any,
        home: ThreadHome,
        loop: asyncio.AbstractEventLoop,
        post: Callable[..., Any],
    ) -> None:
        # ThreadHome fields, set directly (this runs once per request).
        self.inbox = state.inbox
        self.ident = home.ident
        self.name = home.name
        self.busy_job: Job | None = None
        self.busy_since = 0.0
        self.bridge = bridge
        self.app: ASGIApp = bridge._app3
        self.scope: dict[str, Any] = _NO_SCOPE
        self.context: contextvars.Context
        self.state = state
        self.loop = loop
        self.post = post
        self.limit: int = bridge._send_buffer
        self.low: int = self.limit >> 1
        self.chunk_size: int = bridge._read_chunk_size
        self.pending: deque[Any] = deque()
        self.phase = NEW
        self.accepting = True
        self.jobs_seen = False
        self.read_wanted = False
        self.input_gone = False
        self.sent_body = False
        self.send_waiter: asyncio.Future[None] | None = None
        self.read_fut: asyncio.Future[Message] | None = None
        self.done_fut: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.body: bytes | None = b""
        self.body_more = False
        self.input: IO[bytes] | None = None
        self.remaining: int | None = None
        self.start_status: Any = None
        self.start_headers: Any = None

    # =================================================================== loop side

    async def run(self) -> None:
        """The ASGI task: call the app, and turn how it ends into what the WSGI side needs."""
        HOME.set(self)
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            phase = self.phase
            if phase == COMPLETE:
                pass  # background work cut short by background_timeout (already logged)
            elif phase != GONE:
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
            if self.phase < COMPLETE:
                self._failed(
                    AppProtocolError(
                        "the ASGI application returned without completing the response "
                        + (
                            "(it never sent http.response.start)"
                            if self.phase == NEW
                            else "(no http.response.body message with more_body=False)"
                        )
                    )
                )
        finally:
            timer = self.timer
            if timer is not None:
                timer.cancel()
            self.bridge._tasks.discard(self.task)
            # Break the exchange <-> task cycle (the task's context holds this
            # exchange as HOME), so refcounting frees both without a GC pass.
            self.task = None
            self._finished()

    def _failed(self, exc: BaseException) -> None:
        phase = self.phase
        scope = self.scope
        if phase == GONE:
            logger.debug(
                "ASGI application raised after the client went away (%s %s): %r",
                scope["method"],
                scope["path"],
                exc,
            )
            return
        if phase == COMPLETE:
            logger.error(
                "Exception in ASGI application after the response was sent (%s %s)",
                scope["method"],
                scope["path"],
                exc_info=exc,
            )
            return
        if self.sent_body:
            # Body data is out: the WSGI iterator re-raises this, the server aborts
            # the response and logs it with its traceback. Logging it here too
            # would log it twice; ResponseBody.close() logs it if the server
            # never iterates that far.
            logger.debug(
                "ASGI application raised after the response started (%s %s): %r; "
                "re-raised to the WSGI server",
                scope["method"],
                scope["path"],
                exc,
            )
            self.push(Failure(exc))
            return
        logger.error(
            "Exception in ASGI application (%s %s)",
            scope["method"],
            scope["path"],
            exc_info=exc,
        )
        self.push(Failure(exc))

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
        bound = self.bridge._background_timeout
        if bound is not None:
            self.timer = self.loop.call_later(bound, self._background_expired, bound)

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
        if self.phase == COMPLETE:
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
        while self.body_more and self.phase <= STARTED:
            fut = self.read_fut
            if fut is not None:  # another receive() is reading: let it finish first
                await asyncio.wait((fut,))
                continue
            fut = self.loop.create_future()
            self.read_fut = fut
            self.read_wanted = True
            self.inbox.wake()
            try:
                return await fut
            finally:
                self.read_fut = None
        if self.body is not None:  # delivered to a receive() that was cancelled
            return await self.receive()
        if self.phase <= STARTED and not self.input_gone:
            fut2 = self.done_fut
            if fut2 is None or fut2.cancelled():  # a cancelled receive() cancels its future
                fut2 = self.done_fut = self.loop.create_future()
            await fut2
        return _DISCONNECT.copy()

    def deliver(self, data: bytes, more: bool, gone: bool) -> None:
        """Loop callback: one chunk read from ``wsgi.input`` by the WSGI thread."""
        fut = self.read_fut
        if gone:
            self.input_gone = True
            self.body_more = False
            message: Message = _DISCONNECT.copy()
        else:
            self.body_more = more
            message = {"type": "http.request", "body": data, "more_body": more}
        if fut is not None and not fut.done():
            fut.set_result(message)
        elif not gone:
            self.body = data

    async def send(self, message: Message) -> None:
        """The app's ``send()``."""
        kind = message["type"]
        if kind == "http.response.body":
            if self.phase != STARTED:
                raise self._out_of_order(kind)
            body = message.get("body", b"")
            more = message.get("more_body", False)
            pending = self.pending
            if body:
                if body.__class__ is not bytes:
                    body = bytes(body)
                self.sent_body = True
                pending.append(body)
                if more:
                    if len(pending) <= 1:
                        self.inbox.wake()
                    if len(pending) >= self.limit:
                        await self._wait_for_room()
                    return
                pending.append(END)
                if len(pending) <= 2:
                    self.inbox.wake()
            elif more:
                return
            else:
                self.push(END)
            self._complete()
            return
        if kind == "http.response.start":
            if self.phase != NEW:
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
            if self.phase != STARTED or self.sent_body:
                raise self._out_of_order(kind)
            path = message.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise AppProtocolError(
                    f"http.response.pathsend needs an absolute file path as 'path', got {path!r}"
                )
            self.push(PathSend(path))
            self._complete()
            return
        if self.phase == GONE:
            raise ClientDisconnected("the client went away; the response cannot be sent")
        raise AppProtocolError(
            f"unknown ASGI message type {kind!r} for an http scope; expected "
            "'http.response.start', 'http.response.body' or 'http.response.pathsend'"
        )

    def _out_of_order(self, kind: str) -> BaseException:
        phase = self.phase
        if phase == GONE:
            return ClientDisconnected(
                f"cannot send {kind!r}: the client went away and the response was abandoned"
            )
        if phase == NEW:
            return AppProtocolError(f"{kind!r} sent before 'http.response.start'")
        if phase == COMPLETE:
            return AppProtocolError(f"{kind!r} sent after the response was complete")
        if kind == "http.response.start":
            return AppProtocolError("'http.response.start' sent twice")
        return AppProtocolError(f"{kind!r} sent after body data; it must replace the body")

    async def _wait_for_room(self) -> None:
        pending = self.pending
        limit = self.limit
        while len(pending) >= limit and self.phase == STARTED:
            fut: asyncio.Future[None] = self.loop.create_future()
            self.send_waiter = fut
            if len(pending) < limit:  # the WSGI side popped meanwhile
                self.send_waiter = None
                return
            try:
                await fut
            finally:
                self.send_waiter = None
        if self.phase == GONE:
            raise ClientDisconnected("the client went away; the response cannot be sent")

    # =================================================================== WSGI side

    def next_item(self) -> Any:
        """Block until the loop has something for this request and return it.

        Meanwhile serve body reads and thread-sensitive jobs for the app.
        """
        pending = self.pending
        while True:
            if self.read_wanted:
                self._read_body()
            if pending:
                item = pending.popleft()
                waiter = self.send_waiter
                if waiter is not None and len(pending) <= self.low:
                    self.send_waiter = None
                    self.post(_resolve, waiter, None)
                return item
            if self.jobs_seen and not self.inbox.empty():
                msg = self.inbox.get_nowait()
                if msg.__class__ is Job:
                    self._run_job(msg)
                elif msg.__class__ is tuple:  # a portal reply for an outer wait
                    self.state.stash[msg[0]] = msg
                continue
            self.inbox.sleep()

    def _run_job(self, job: Job) -> None:
        self.busy_job = job
        try:
            run_job(job, self.state)
        finally:
            self.busy_job = None

    def preread(self, environ: dict[str, Any]) -> str | None:
        """Read a small body before the app starts; set up on-demand reads otherwise.

        Returns an error message (answered 400) for a ``CONTENT_LENGTH`` that is
        not ASCII digits (rule A13).
        """
        length = environ.get("CONTENT_LENGTH")
        if length:
            # A13: ASCII digits only. int() would take "1_0", "+5", " 5" and
            # non-ASCII digits, and read a different length than the header says.
            if length.__class__ is not str or not (length.isdigit() and length.isascii()):
                return (
                    f"invalid Content-Length {length!r}: it must be ASCII digits only "
                    "(RFC 9110 section 8.6)"
                )
            size = int(length)
            if size == 0:
                return None
            inp = environ["wsgi.input"]
            if size <= self.chunk_size:
                data = self._read(inp, size)
                if data is None or len(data) < size:
                    # The client went away mid-upload: the app sees a disconnect.
                    self.body = None
                    self.input_gone = True
                else:
                    self.body = data
                return None
            self.input = inp
            self.remaining = size
            self.body = None
            self.body_more = True
            return None
        if environ.get("wsgi.input_terminated") and (
            "HTTP_TRANSFER_ENCODING" in environ
            or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
        ):
            # gunicorn sets wsgi.input_terminated on every request; a GET or
            # HEAD without Transfer-Encoding has no body, so skip the read.
            inp = environ["wsgi.input"]
            limit = self.chunk_size
            parts: list[bytes] = []
            total = 0
            while total < limit:
                part = self._read_some(inp, limit - total)
                if part is None:
                    self.body = None
                    self.input_gone = True
                    return None
                if not part:
                    self.body = b"".join(parts)
                    return None
                parts.append(part)
                total += len(part)
            self.body = b"".join(parts)
            self.body_more = True
            self.input = inp
        return None

    @staticmethod
    def _read(inp: Any, size: int) -> bytes | None:
        """Read exactly ``size`` bytes (fewer only at end of input); ``None`` on error."""
        try:
            data = inp.read(size)
            if len(data) < size:
                parts = [data]
                got = len(data)
                while got < size:
                    more = inp.read(size - got)
                    if not more:
                        break
                    parts.append(more)
                    got += len(more)
                data = b"".join(parts)
        except Exception as exc:
            logger.debug("reading the request body failed: %r", exc)
            return None
        return bytes(data)

    @staticmethod
    def _read_some(inp: Any, size: int) -> bytes | None:
        try:
            return bytes(inp.read(size))
        except Exception as exc:
            logger.debug("reading the request body failed: %r", exc)
            return None

    def _read_body(self) -> None:
        """Serve one ``receive()`` that needs data from ``wsgi.input``."""
        self.read_wanted = False
        inp = self.input
        remaining = self.remaining
        if remaining is None:  # chunked: read until b""
            data = self._read_some(inp, self.chunk_size)
            if data is None:
                self.post(_deliver, self, b"", False, True)
            else:
                self.post(_deliver, self, data, bool(data), False)
            return
        data = self._read(inp, min(self.chunk_size, remaining))
        if data is None or not data:
            self.post(_deliver, self, b"", False, True)
            return
        remaining -= len(data)
        self.remaining = remaining
        self.post(_deliver, self, data, remaining > 0, False)

    def finish(self) -> None:
        """The WSGI side is done with the request: stop taking jobs, hand leftovers on."""
        with _home_lock:
            self.accepting = False
        if self.jobs_seen:
            _rehome_jobs(self.state)

    def abandon(self) -> None:
        """The server closed the response early: finish, and cancel the ASGI task (A4)."""
        self.finish()
        try:
            self.post(_client_gone, self)
        except RuntimeError:  # the loop is already closed
            pass

    # ThreadHome protocol: called on the loop thread by thread-sensitive sync_to_async.
    def submit(self, job: Job) -> None:
        """Run ``job`` on this request's WSGI thread, or on the shared lane once it has left."""
        with _home_lock:
            if self.accepting:
                self.jobs_seen = True
                ThreadHome.submit(self, job)
                self.inbox.wake()
                return
        default_scheduler().default_lane().submit(job)


def declared_length(headers: list[tuple[str, str]]) -> int:
    """The response's ``Content-Length`` as the app declared it, or -1 when there is none."""
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            return int(value) if value.isascii() and value.isdigit() else -1
    return -1


def cut_body(scope: Any, excess: int) -> None:
    """Log that the app sent more body than its ``Content-Length``; the caller cuts it (A14)."""
    logger.warning(
        "the ASGI app sent more body than its Content-Length (%s %s): %d bytes or more too "
        "many, not sent. Fix the app's Content-Length header or its body.",
        scope["method"],
        scope["path"],
        excess,
    )


def _deliver(ex: Exchange, data: bytes, more: bool, gone: bool) -> None:
    ex.deliver(data, more, gone)


def _client_gone(ex: Exchange) -> None:
    ex.client_gone()


def _rehome_jobs(state: Any) -> None:
    """Move jobs left in this thread's inbox to the shared lane; keep portal replies."""
    inbox = state.inbox
    while True:
        try:
            msg = inbox.get_nowait()
        except Exception:
            return
        if msg.__class__ is Job:
            default_scheduler().default_lane().submit(msg)
        elif msg.__class__ is tuple:
            state.stash[msg[0]] = msg


class ResponseBody:
    """The WSGI response iterable for a streamed response.

    Never more bytes than the app's ``Content-Length`` (``remaining``, -1 when
    it gave none): the excess is cut and logged once, because some WSGI
    servers (wsgiref) write whatever the iterable yields. The rest of the
    app's body is still drained, so its ``send()`` calls complete.
    """

    __slots__ = ("cut", "ex", "first", "remaining", "scope")

    def __init__(self, ex: Exchange, first: bytes, remaining: int = -1) -> None:
        self.ex: Exchange | None = ex
        self.first: bytes | None = first
        self.remaining = remaining
        self.scope = ex.scope
        self.cut = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        item = self.first
        if item is not None:
            self.first = None
        else:
            ex = self.ex
            if ex is None:
                raise StopIteration
            item = ex.next_item()
            if item.__class__ is not bytes:
                self.ex = None
                ex.finish()
                if item is END:
                    raise StopIteration
                if item.__class__ is Failure:
                    # Headers are out: all we can do is abort, so the server drops the
                    # connection. The server logs the error (the bridge did not, A6).
                    raise item.exc
                raise AppProtocolError(f"unexpected response item {item!r}")  # pragma: no cover
        remaining = self.remaining
        if remaining < 0:
            return item
        if len(item) <= remaining:
            self.remaining = remaining - len(item)
            return item
        if not self.cut:
            self.cut = True
            cut_body(self.scope, len(item) - remaining)
        self.remaining = 0
        return item[:remaining]

    def close(self) -> None:
        """Called by the server; before the end of the body it cancels the ASGI task.

        An app exception that was waiting to be re-raised to the server (and
        so to be logged by it) is logged here instead, with its traceback.
        """
        self.first = None
        ex = self.ex
        if ex is not None:
            self.ex = None
            for item in tuple(ex.pending):
                if item.__class__ is Failure:
                    logger.error(
                        "Exception in ASGI application (%s %s); the response had started, "
                        "and the server closed it before the error could abort it",
                        ex.scope["method"],
                        ex.scope["path"],
                        exc_info=item.exc,
                    )
                    break
            ex.abandon()


class FileBody:
    """Reads a ``pathsend`` file in chunks when the server has no ``wsgi.file_wrapper``."""

    __slots__ = ("block", "file")

    def __init__(self, file: IO[bytes], block: int) -> None:
        self.file = file
        self.block = block

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.file.read(self.block)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        self.file.close()
