"""``WsgiToAsgi``: serve a PEP 3333 (WSGI) application from any ASGI 3 server.

Theory of operation
-------------------
``WsgiToAsgi`` is an ASGI 3 application. This module holds its options,
their validation and its lifetime (the worker pool, :meth:`WsgiToAsgi.close`);
``__call__`` looks the scope type up in a small route table and awaits one
function from :mod:`asgibridge._wsgi`, which owns the request from there:

* ``http``: the request path of the configured executor. ``"thread"`` (the
  default, :mod:`asgibridge._wsgi._thread`): a thread from this instance's
  own bounded pool; one hand-off to a worker and one back for a small
  response, and only ``active_workers`` requests run at once unless the
  running ones look blocked (:class:`~asgibridge._wsgi.Admission`), because
  extra runnable threads only add GIL hand-offs. ``"greenlet"``
  (:mod:`asgibridge._wsgi._greenlet`): a pooled greenlet on the loop's own
  thread. The WSGI side (:mod:`asgibridge._wsgi._response`) knows nothing
  about loops; the loop side knows nothing about PEP 3333.
* ``lifespan``: run the ``on_startup`` / ``on_shutdown`` hooks, answer every
  message, and stop the worker threads on shutdown (rule C17;
  :mod:`asgibridge._wsgi._lifespan`).
* ``websocket``: refused with a close right after ``websocket.connect``.

A new scope type is one entry in :meth:`WsgiToAsgi._route_table` and one
module in ``_wsgi``; a new executor is one entry in ``_EXECUTORS`` and one
module providing an :class:`~asgibridge._wsgi.Executor`.

Nothing starts at import or construction: the pool starts with the first
request, starts afresh after :meth:`WsgiToAsgi.close` or in a forked child,
and its idle threads exit after ``idle_timeout`` seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Literal, TextIO, cast

from ._codec import EnvironBuilder
from ._core import ThreadPool
from ._types import Receive, Scope, Send, WSGIApp
from ._wsgi import (
    GREENLET,
    THREAD,
    ErrorStream,
    Executor,
    FileWrapper,
    Hook,
    PoolAdmission,
    ThreadExchange,
    refuse_websocket,
    serve_lifespan,
)
from .errors import ServerProtocolError

__all__ = ["WsgiToAsgi"]

#: Where the app runs, by ``executor=`` name: a request path and a hook runner each.
_EXECUTORS: dict[str, Executor] = {"thread": THREAD, "greenlet": GREENLET}

Route = Callable[[Any, Scope, Receive, Send], Awaitable[None]]


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _non_negative_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
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
        unless the running ones look blocked (the process sits idle while
        requests wait, or none finished for 2 ms): then it starts at once on
        another thread, up to ``max_workers``. Default 1.
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
        active_workers: int = 1,
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
        if executor not in _EXECUTORS:
            raise ValueError(f"executor must be 'thread' or 'greenlet', got {executor!r}")
        self.app = app
        self.executor = executor
        self.max_workers = _positive_int("max_workers", max_workers)
        self.max_stalled_uploads = _non_negative_int("max_stalled_uploads", max_stalled_uploads)
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
        self._adm: PoolAdmission[ThreadExchange] | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._executor = _EXECUTORS[executor]
        self._routes = self._route_table()

    def _route_table(self) -> dict[str, Route]:
        """The request path of each scope type: a new scope type is one entry here."""
        return {
            "http": self._executor.serve,
            "lifespan": serve_lifespan,
            "websocket": refuse_websocket,
        }

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

    def _admission(self) -> PoolAdmission[ThreadExchange]:
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
                    adm = self._adm = PoolAdmission(
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
        """The ASGI 3 entry point: hand the scope to the route of its type."""
        kind = scope["type"]
        try:
            route = self._routes[kind]
        except KeyError:
            raise ServerProtocolError(
                f"WsgiToAsgi cannot handle ASGI scope type {kind!r}; it serves 'http', "
                "'lifespan' and 'websocket' (refused). Route other scope types to another app."
            ) from None
        await route(self, scope, receive, send)
