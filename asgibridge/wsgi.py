"""``WsgiToAsgi``: serve a PEP 3333 (WSGI) application from any ASGI 3 server.

Theory of operation
-------------------
``WsgiToAsgi`` is an ASGI 3 application. Per scope type:

* ``http``: build the environ (pure, :mod:`asgibridge._environ`), then run
  the app in a worker: a thread from this instance's own bounded pool
  (``executor="thread"``, the default) or a pooled greenlet on the loop's
  own thread (``executor="greenlet"``). The WSGI side
  (:mod:`asgibridge._wsgi_response`) knows nothing about loops; the loop
  side (:mod:`asgibridge._wsgi_exchange`) knows nothing about PEP 3333.
* ``lifespan``: run the ``on_startup`` / ``on_shutdown`` hooks, answer every
  message, and stop the worker threads on shutdown (rule C17).
* ``websocket``: refused with a close right after ``websocket.connect``.

Thread mode costs one hand-off to a worker and one back for a small
response (see :mod:`asgibridge._wsgi_exchange`), and only ``active_workers``
requests run at once unless the running ones look blocked
(:class:`~asgibridge._wsgi_exchange.Admission`), because extra runnable
threads only add GIL hand-offs.

Nothing starts at import or construction: the pool starts with the first
request, starts afresh after :meth:`WsgiToAsgi.close` or in a forked child,
and its idle threads exit after ``idle_timeout`` seconds.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from types import TracebackType
from typing import Any, Literal, TextIO, cast

from ._codec import EnvironBuilder
from ._core import (
    Job,
    ThreadPool,
    batching_ref,
    current_loop_ref,
    run_in_greenlet,
    run_job_async,
    thread_state,
)
from ._interface import iscoroutinefunction
from ._types import Message
from ._wsgi import (
    EMPTY_INPUT,
    Admission,
    ErrorStream,
    FileWrapper,
    GreenletExchange,
    Input,
    ThreadExchange,
    body_message,
    run_wsgi,
)
from .errors import ClientDisconnected, RequestRejected, ServerProtocolError

__all__ = ["WsgiToAsgi"]

logger = logging.getLogger("asgibridge.wsgi")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Hook = Callable[[], Any]

_EMPTY: dict[str, Any] = {}

# A request of these methods, with these SERVER_PROTOCOLs, and with neither
# Content-Length nor Transfer-Encoding has no body (RFC 9112 section 6.3; an
# HTTP/2 or HTTP/3 request may have one without either header).
_BODYLESS_METHODS = frozenset({"GET", "HEAD"})
_BODYLESS_PROTOCOLS = frozenset({"HTTP/1.1", "HTTP/1.0"})


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _hooks(name: str, value: Hook | Sequence[Hook] | None) -> tuple[Hook, ...]:
    if value is None:
        return ()
    hooks = (value,) if callable(value) else tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{name} must be a callable or a sequence of callables, got {hook!r}")
    return hooks


class WsgiToAsgi:
    """Wrap a WSGI application so that any ASGI 3 server can serve it.

    ``WsgiToAsgi(app)`` is an ASGI application (``await
    bridge(scope, receive, send)``) that follows PEP 3333 and rules C1-C22
    of the conformance list (see ``docs/wsgi.md``).

    :param app: the WSGI application, ``app(environ, start_response)``.
    :param executor: where the app runs. ``"thread"`` (default): a bounded
        pool of worker threads owned by this instance; any app works.
        ``"greenlet"``: a pooled greenlet on the event loop's own thread; no
        thread hand-offs at all, but an app that blocks (plain socket I/O,
        ``time.sleep``) blocks the whole loop while it does. Use it for apps
        whose waiting goes through the bridge (``wsgi.input``, the response,
        ``async_to_sync``) or that are CPU-light.
    :param max_workers: thread mode: most requests running at once; more
        wait in a FIFO queue. A request whose ``wsgi.input`` read waits for
        the client does not count (see ``max_stalled_uploads``). Default 40.
    :param max_stalled_uploads: thread mode: most worker threads that may
        wait in a ``wsgi.input`` read for a client's next bytes (for more
        than 5 ms) without counting against ``max_workers``, so that clients
        that stall mid-upload cannot starve other requests (C15). The pool
        thus has at most ``max_workers + max_stalled_uploads`` threads.
        ``0`` counts waiting workers as running. Default 256.
    :param active_workers: thread mode: how many requests start at once
        before later ones queue. Extra runnable threads only add GIL
        hand-offs, so a queued request waits for a running one to finish,
        unless no request has finished for 2 ms (they look blocked on I/O):
        then it starts at once on another thread, up to ``max_workers``.
        Default 2.
    :param idle_timeout: thread mode: seconds before an idle worker thread
        exits. Default 60.
    :param max_headers: answer 400 to a request with more header lines (C21).
    :param max_header_repeats: answer 400 to a request that repeats one
        header name more often (C21).
    :param prefetch: thread mode: bytes of request body read on the loop
        before a worker is taken (the whole body when it is smaller), so that
        clients that stall before sending a body hold no thread (C15).
        Default 64 KiB.
    :param body_window: thread mode: most request body bytes read ahead of
        the app while it runs (C10). Default 256 KiB.
    :param body_timeout: thread mode: seconds a worker waits in a
        ``wsgi.input`` read for the client's next bytes before the read
        raises :class:`~asgibridge.ClientDisconnected` (C15); the client is
        then answered 408 if no response has started. ``None`` waits forever.
        Default 30.
    :param send_window: most response messages queued between the app and
        the server; a worker producing more waits for the client (C13).
        Default 16.
    :param send_window_bytes: most response bytes queued likewise. Default 256 KiB.
    :param on_startup: a callable, or a sequence of callables, run on
        ``lifespan.startup``. Each may be sync (run on a worker) or async.
        A failure is answered with ``lifespan.startup.failed``.
    :param on_shutdown: likewise on ``lifespan.shutdown``, before the worker
        threads are stopped.
    :param errors: the ``wsgi.errors`` stream. Default: a text stream that
        logs each line to the ``asgibridge.wsgi`` logger (C12).
    :param shutdown_timeout: seconds :meth:`close` / :meth:`aclose` (and
        lifespan shutdown) wait for busy workers to finish. Default 5.
    :raises ValueError: an option is out of range.
    :raises TypeError: ``app`` or a hook is not callable.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        executor: Literal["thread", "greenlet"] = "thread",
        max_workers: int = 40,
        max_stalled_uploads: int = 256,
        active_workers: int = 2,
        idle_timeout: float = 60.0,
        max_headers: int = 100,
        max_header_repeats: int = 32,
        prefetch: int = 64 * 1024,
        body_window: int = 256 * 1024,
        body_timeout: float | None = 30.0,
        send_window: int = 16,
        send_window_bytes: int = 256 * 1024,
        on_startup: Hook | Sequence[Hook] | None = None,
        on_shutdown: Hook | Sequence[Hook] | None = None,
        errors: TextIO | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if not callable(app):
            raise TypeError(
                f"app must be a WSGI callable app(environ, start_response), got {app!r}"
            )
        if executor not in ("thread", "greenlet"):
            raise ValueError(f"executor must be 'thread' or 'greenlet', got {executor!r}")
        self.app = app
        self.executor = executor
        self.max_workers = _positive_int("max_workers", max_workers)
        if (
            not isinstance(max_stalled_uploads, int)
            or isinstance(max_stalled_uploads, bool)
            or max_stalled_uploads < 0
        ):
            raise ValueError(
                f"max_stalled_uploads must be an int >= 0, got {max_stalled_uploads!r}"
            )
        self.max_stalled_uploads = max_stalled_uploads
        self.active_workers = _positive_int("active_workers", active_workers)
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout!r}")
        self.idle_timeout = float(idle_timeout)
        self._environ = EnvironBuilder(
            errors=errors if errors is not None else cast(TextIO, ErrorStream()),
            multithread=True,
            max_headers=_positive_int("max_headers", max_headers),
            max_header_repeats=_positive_int("max_header_repeats", max_header_repeats),
            extra={"wsgi.file_wrapper": FileWrapper, "wsgi.input_terminated": True},
        )
        self.prefetch = _positive_int("prefetch", prefetch)
        self.body_window = _positive_int("body_window", body_window)
        if body_timeout is not None and body_timeout <= 0:
            raise ValueError(f"body_timeout must be positive or None, got {body_timeout!r}")
        self.body_timeout = body_timeout
        self.send_window = _positive_int("send_window", send_window)
        self.send_window_bytes = _positive_int("send_window_bytes", send_window_bytes)
        self.on_startup = _hooks("on_startup", on_startup)
        self.on_shutdown = _hooks("on_shutdown", on_shutdown)
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        self.shutdown_timeout = float(shutdown_timeout)
        self._adm: _PoolAdmission | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._greenlet = executor == "greenlet"

    def __repr__(self) -> str:
        return f"WsgiToAsgi({self.app!r}, executor={self.executor!r})"

    # The environ settings live in the environ builder, which keeps per-server
    # templates; these properties keep the attributes assignable.

    @property
    def errors(self) -> TextIO:
        """The ``wsgi.errors`` stream of every request (assignable)."""
        return self._environ.errors

    @errors.setter
    def errors(self, stream: TextIO) -> None:
        self._environ.errors = stream
        self._environ.clear()

    @property
    def max_headers(self) -> int:
        """Most header lines a request may have before it is answered 400 (assignable)."""
        return self._environ.max_headers

    @max_headers.setter
    def max_headers(self, value: int) -> None:
        self._environ.max_headers = _positive_int("max_headers", value)

    @property
    def max_header_repeats(self) -> int:
        """Most lines of one header name before a request is answered 400 (assignable)."""
        return self._environ.max_header_repeats

    @max_header_repeats.setter
    def max_header_repeats(self, value: int) -> None:
        self._environ.max_header_repeats = _positive_int("max_header_repeats", value)

    # ------------------------------------------------------------------ workers

    @property
    def pool(self) -> ThreadPool:
        """The worker pool (thread mode), started on first use and after a fork."""
        return self._admission().pool

    def _admission(self) -> _PoolAdmission:
        adm = self._adm
        if adm is None or self._pool_pid != os.getpid():
            with self._pool_lock:
                adm = self._adm
                if adm is None or self._pool_pid != os.getpid():
                    # Threads: max_workers running requests, plus up to
                    # max_stalled_uploads waiting for their clients (C15).
                    pool = ThreadPool(
                        self.max_workers + self.max_stalled_uploads,
                        name="asgibridge-wsgi",
                        idle_timeout=self.idle_timeout,
                    )
                    adm = self._adm = _PoolAdmission(
                        pool, self.active_workers, self.max_workers, self.max_stalled_uploads
                    )
                    self._pool_pid = os.getpid()
        return adm

    def close(self) -> None:
        """Stop the worker threads, waiting up to ``shutdown_timeout`` for busy ones.

        Requests that arrive later start a fresh pool. Do not call this from
        the event loop thread while requests run (use :meth:`aclose`).
        """
        with self._pool_lock:
            adm, self._adm = self._adm, None
        if adm is not None and self._pool_pid == os.getpid():
            adm.pool.close(self.shutdown_timeout)

    async def aclose(self) -> None:
        """Like :meth:`close`, but waits for busy workers without blocking the loop."""
        with self._pool_lock:
            adm, self._adm = self._adm, None
        if adm is None or self._pool_pid != os.getpid():
            return
        pool = adm.pool
        pool.close(0)
        import anyio

        with anyio.move_on_after(self.shutdown_timeout):
            while pool.size:
                await anyio.sleep(0.005)

    async def __aenter__(self) -> WsgiToAsgi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            elif kind == "websocket":
                await _refuse_websocket(receive, send)
            else:
                raise ServerProtocolError(
                    f"WsgiToAsgi cannot handle ASGI scope type {kind!r}; it serves 'http', "
                    "'lifespan' and 'websocket' (refused). Route other scope types to another app."
                )
            return
        try:
            environ = self._environ.build(scope)
        except RequestRejected as exc:
            await _reject(send, exc)
            return
        environ["asgi.scope"] = scope
        length_text = environ.get("CONTENT_LENGTH")
        length = int(length_text) if length_text else None
        if length == 0 or (
            length is None
            and environ["REQUEST_METHOD"] in _BODYLESS_METHODS
            and "HTTP_TRANSFER_ENCODING" not in environ
            and environ["SERVER_PROTOCOL"] in _BODYLESS_PROTOCOLS
        ):
            # No body: Content-Length 0, or an HTTP/1.x GET or HEAD with neither
            # Content-Length nor Transfer-Encoding (RFC 9112 section 6.3; other
            # methods are left to the server's messages, as some ASGI servers
            # and test clients stream bodies without those headers). So
            # receive() is not called before the app runs: on granian each call
            # costs a loop iteration and a wake-up from its Rust threads (issue
            # 14). The server's empty http.request stays unread until a
            # disconnect watcher calls receive() (``unread``).
            msg: Message | None = None
        else:
            msg = await receive()
            if msg["type"] != "http.request":
                try:
                    body_message(msg)
                except ClientDisconnected:
                    return  # the client left before the app ran: nothing to answer
        if not self._greenlet:
            await self._serve_thread(scope, receive, send, environ, length, msg)
            return

        # Greenlet mode, inline: this is the hot path.
        if msg is None:
            ex = GreenletExchange(receive, send, scope.get("extensions") or _EMPTY, True)
            ex.unread = True
            environ["wsgi.input"] = EMPTY_INPUT
        else:
            data = msg.get("body", b"")
            more = msg.get("more_body", False)
            ex = GreenletExchange(receive, send, scope.get("extensions") or _EMPTY, not more)
            if data or more or length:
                environ["wsgi.input"] = Input(ex.pull, length, data, more)
            else:
                environ["wsgi.input"] = EMPTY_INPUT
        try:
            await run_in_greenlet(run_wsgi, self.app, environ, ex)
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

    async def _serve_thread(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        environ: dict[str, Any],
        length: int | None,
        msg: Message | None,
    ) -> None:
        ref = batching_ref(current_loop_ref())
        ex = ThreadExchange(
            ref,
            receive,
            send,
            scope.get("extensions") or _EMPTY,
            window_n=self.send_window,
            window_b=self.send_window_bytes,
            body_window=self.body_window,
            body_timeout=self.body_timeout,
        )
        # Read the start of the body on the loop, before a worker is taken (C15).
        if msg is None:  # no body, and the server's empty http.request is unread
            ex.body_done = True
            ex.unread = True
            environ["wsgi.input"] = EMPTY_INPUT
        elif not msg.get("more_body", False):
            data = msg.get("body", b"")
            ex.body_done = True
            if data:
                ex.body.append(data)
                ex.body_b = len(data)
            elif not length:
                environ["wsgi.input"] = EMPTY_INPUT
        else:
            data = msg.get("body", b"")
            body = ex.body
            got = 0
            prefetch = self.prefetch
            while True:
                if data:
                    body.append(data)
                    got += len(data)
                if not msg.get("more_body", False):
                    ex.body_done = True
                    break
                if got >= prefetch:
                    break
                msg = await receive()
                if msg["type"] != "http.request":
                    try:
                        body_message(msg)
                    except ClientDisconnected:
                        return
                data = msg.get("body", b"")
            ex.body_b = got
        if "wsgi.input" not in environ:
            environ["wsgi.input"] = Input(ex.pull, length)

        adm = self._admission()
        ex.adm = adm
        ex.app = self.app
        ex.environ = environ
        job = ex.job = Job(_job_main, (ex, adm), {}, contextvars.copy_context())
        job.ref = ref
        job.settle = ex.on_settle
        try:
            adm.admit(ex)
            await ex.dispatch()
        except BaseException:
            if ex.outcome is None:
                cancel = job.cancel_nested
                if cancel is not None:
                    cancel()
                ex.abandon("the request was cancelled")
            elif ex.rx is not None:
                ex.rx.cancel()
            raise
        # The worker is done with this request: break the exchange <-> job
        # cycle so that refcounting frees both now, not a later GC pass.
        ex.job = None
        rx = ex.rx
        if rx is not None:
            rx.cancel()
            await rx.join()
        assert ex.outcome is not None
        ok, value = ex.outcome
        if not ok:
            if ex.timed_out and ex.sent_n == 0 and isinstance(value, ClientDisconnected):
                await _answer(send, 408, b"Request Timeout: the request body stalled\n")
                return
            raise value
        error = ex.send_error
        if error is not None and not isinstance(error, OSError):
            raise error

    # ----------------------------------------------------------------- lifespan

    async def _run_hook(self, hook: Hook) -> None:
        if iscoroutinefunction(hook) or iscoroutinefunction(
            getattr(hook, "__call__", None)  # noqa: B004
        ):
            await hook()
            return
        if self._greenlet:
            result = await run_in_greenlet(hook)
        else:
            result = await run_job_async(Job(hook, (), {}, contextvars.copy_context()), self.pool)
        if inspect.isawaitable(result):
            await result

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            kind = msg.get("type")
            if kind == "lifespan.startup":
                for hook in self.on_startup:
                    try:
                        await self._run_hook(hook)
                    except Exception as exc:
                        logger.exception("WsgiToAsgi startup hook %r failed", hook)
                        await send(
                            {
                                "type": "lifespan.startup.failed",
                                "message": f"startup hook {_name(hook)} raised {exc!r}",
                            }
                        )
                        return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                failure = ""
                for hook in self.on_shutdown:
                    try:
                        await self._run_hook(hook)
                    except Exception as exc:
                        logger.exception("WsgiToAsgi shutdown hook %r failed", hook)
                        failure = failure or f"shutdown hook {_name(hook)} raised {exc!r}"
                await self.aclose()
                if failure:
                    await send({"type": "lifespan.shutdown.failed", "message": failure})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                raise ServerProtocolError(
                    f"unexpected lifespan message {kind!r}; expected 'lifespan.startup' or "
                    "'lifespan.shutdown'"
                )


class _PoolAdmission(Admission):
    """An :class:`Admission` in front of one :class:`ThreadPool`."""

    __slots__ = ("pool",)

    def __init__(self, pool: ThreadPool, soft: int, hard: int, max_stalled: int) -> None:
        super().__init__(pool.submit, soft, hard, max_stalled)
        self.pool = pool


def _job_main(ex: ThreadExchange, adm: Admission) -> None:
    """What a worker thread runs: this request, then queued ones while there are any.

    Each request's outcome is posted by :func:`_report` as soon as it is
    known, so the job is marked ``reported``: the core posts nothing more
    when this function returns.
    """
    job = ex.job
    _report(ex, _run_request(ex))
    state = thread_state()
    prev = state.job
    try:
        while True:
            nxt = adm.finished()
            if nxt is None:
                return
            ex = nxt
            state.job = ex.job
            _report(ex, ex.job.context.run(_run_request, ex))
    finally:
        state.job = prev
        job.reported = True


def _run_request(ex: ThreadExchange) -> tuple[bool, Any]:
    """Run one request's app; return its outcome as ``(ok, exception or None)``."""
    if ex.gone:  # its request was cancelled while it waited
        return True, None
    try:
        run_wsgi(ex.app, ex.environ, ex)
    except BaseException as exc:
        return False, exc
    finally:
        ex.environ = None  # type: ignore[assignment]
    return True, None


def _report(ex: ThreadExchange, outcome: tuple[bool, Any]) -> None:
    """Post a request's outcome to its request task (which then sends the final messages).

    Posted as soon as the app is done, before this worker looks for more
    work: measured here, reporting after the admission bookkeeping instead
    doubles the latency of a lone request (~50 -> ~100 us).
    """
    try:
        ex.post(ex.on_settle, None, *outcome)
    except RuntimeError:  # the loop has closed: nobody is waiting any more
        pass


#: Most seconds the greenlet path waits for the end of a body the app read in full.
BODY_END_WAIT = 1.0


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
    import anyio

    with anyio.move_on_after(BODY_END_WAIT):
        try:
            msg = await receive()
        except Exception:
            return
        if msg.get("type") == "http.disconnect":
            ex._mark_gone("the client disconnected")
        elif not msg.get("more_body", False):
            ex.body_done = True


def _name(hook: Hook) -> str:
    return str(getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or hook)


async def _send_all(send: Send, messages: list[Message]) -> None:
    for msg in messages:
        await send(msg)


async def _answer(send: Send, status: int, body: bytes) -> None:
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


async def _reject(send: Send, exc: RequestRejected) -> None:
    """Answer a request refused before the app runs (rule C21), never calling the app."""
    logger.info("request rejected with %d: %s", exc.status, exc)
    reason = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}.get(
        exc.status, b"Rejected"
    )
    await _answer(send, exc.status, reason + b": " + str(exc).encode("latin-1", "replace") + b"\n")


async def _refuse_websocket(receive: Receive, send: Send) -> None:
    """Refuse a websocket: close it right after ``websocket.connect`` (rule C17)."""
    msg = await receive()
    if msg.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
    # anything else ("websocket.disconnect"): the client already left
