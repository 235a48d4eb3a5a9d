"""``AsgiToWsgi``: serve an ASGI 3 application from any WSGI server.

Theory of operation
-------------------
All requests and the lifespan run on one asyncio loop on a background
thread (:class:`~asgibridge._core.BackgroundLoop`), started lazily by the
first request or by :meth:`AsgiToWsgi.start`. Each WSGI call becomes one
ASGI task on that loop; see :mod:`asgibridge._asgi` for how a request
crosses between the two threads with two wake-ups.

Process life (rules A1, A2)
    Startup runs once per process before the first request is dispatched.
    After ``os.fork()`` the child forgets the parent's loop and lifespan (an
    ``os.register_at_fork`` hook), so the first request in each gunicorn,
    uWSGI or Passenger worker starts a fresh loop and runs startup again,
    even when the parent had started the bridge before forking
    (``--preload``). Shutdown runs on :meth:`AsgiToWsgi.close`, from an
    ``atexit`` hook at interpreter exit (which is also how a gunicorn worker
    ends), and from the context manager.

Failed startup
    :meth:`AsgiToWsgi.start` raises :class:`~asgibridge.errors.LifespanError`,
    and every request is answered with 500 without reaching the application.
    What counts as failed, and how it is logged (once), is the wing's policy:
    :mod:`asgibridge._asgi._lifetime`.

Signals
    The bridge installs no signal handlers. Shutdown runs where the server
    lets the interpreter exit normally; docs/asgi.md tells, per server and
    signal, when that is and how to make it so.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from contextvars import copy_context
from typing import Any, Literal

from ._asgi import (
    END,
    ERROR_TEXT,
    LOOP_STOPPED,
    ON_LOOP_THREAD,
    Exchange,
    Failure,
    Launcher,
    LifespanRunner,
    PathSend,
    ResponseBody,
    bad_start,
    check_count,
    check_timeout,
    cut_body,
    declared_length,
    eventfd_write,
    plain,
    run_startup,
    send_file,
    shutdown,
    unwatch,
    watch,
)
from ._codec import environ_to_scope, status_line, wsgi_headers
from ._core import BackgroundLoop, current_home, thread_state
from ._interface import single_callable
from ._types import ASGIApp, StartResponse
from .errors import LifespanError, SchedulerError

__all__ = ["AsgiToWsgi"]

logger = logging.getLogger("asgibridge.asgi")

_NEW, _READY, _FAILED, _CLOSED = "new", "ready", "failed", "closed"

# Every bridge, for the at-fork hook; and the started ones, held strongly so
# that a bridge nobody closed still gets its lifespan shutdown at exit.
_bridges: weakref.WeakSet[AsgiToWsgi] = weakref.WeakSet()
_started: set[AsgiToWsgi] = set()


def _after_fork_in_child() -> None:
    for bridge in list(_bridges):
        bridge._forget_parent()


def _at_exit() -> None:
    for bridge in list(_started):
        if bridge._status != _NEW and bridge._pid == os.getpid():
            try:
                bridge.close()
            except Exception:  # pragma: no cover - best effort at exit
                logger.exception("closing %r at interpreter exit failed", bridge)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)


def _not_started(*args: Any) -> None:
    raise RuntimeError("the bridge's event loop is not running in this process")


class AsgiToWsgi:
    """A PEP 3333 (WSGI) application that runs an ASGI 3 application.

    ::

        from asgibridge import AsgiToWsgi
        from myproject import app          # FastAPI, Starlette, Django ASGI, ...

        wsgi_app = AsgiToWsgi(app)         # gunicorn myproject.wsgi:wsgi_app

    :param app: the ASGI application: ASGI 3 (``async def app(scope, receive,
        send)``), or ASGI 2, the older "double-callable" form
        (``app(scope)`` returns an object awaited as ``instance(receive,
        send)``; a class whose instances take the scope, or a callable taking
        one argument), which is recognised here and adapted.
    :param lifespan: ``"auto"`` (default) runs the lifespan protocol and
        carries on without it (rule A12) when the app shows it does not
        support lifespan: it raises, returns without answering, sends a
        message that is not ``lifespan.*`` (an app that ignores
        ``scope["type"]``), calls ``receive()`` again before answering,
        calls neither ``receive()`` nor ``send()`` within 1 second, or does
        not answer within ``startup_timeout``. Only a
        ``lifespan.startup.failed`` answer is fatal. ``"on"`` makes every one
        of these fatal; ``"off"`` never sends lifespan events.
    :param loop: a :class:`~asgibridge._core.BackgroundLoop` to share with
        other components. By default the bridge creates its own, and
        :meth:`close` stops it; a loop passed in is never closed by the bridge.
    :param startup_timeout: seconds to wait for ``lifespan.startup`` to be
        answered (default 60; ``None`` waits forever).
    :param shutdown_timeout: seconds :meth:`close` waits for requests still
        running (including their background work) and then, separately, for
        ``lifespan.shutdown`` to be answered (default 30; ``None`` waits
        forever).
    :param background_timeout: after a response is complete, the app's task
        may keep running (Starlette ``BackgroundTasks``). By default (``None``)
        it runs to completion; with a number of seconds, work still running
        that long after the response ended is cancelled and logged.
    :param send_buffer: how many response body messages may wait between
        the app and the WSGI server (default 16). When that many are queued,
        the app's ``send()`` waits until the server has taken half of them.
    :param read_chunk_size: bytes per ``wsgi.input`` read (default 64 KiB). A
        request body with a ``Content-Length`` up to this size is read before
        the app starts, so its first ``receive()`` needs no thread hand-off.
    :param root_path_from_script_name: ``root_path`` is ``SCRIPT_NAME``
        (default). With ``False`` it is ``""``; ``path`` always includes
        ``SCRIPT_NAME``.

    :raises ValueError: an option is out of range.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: Literal["auto", "on", "off"] = "auto",
        loop: BackgroundLoop | None = None,
        startup_timeout: float | None = 60.0,
        shutdown_timeout: float | None = 30.0,
        background_timeout: float | None = None,
        send_buffer: int = 16,
        read_chunk_size: int = 65536,
        root_path_from_script_name: bool = True,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI 3 application (a callable), got {app!r}")
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', got {lifespan!r}")
        if loop is not None and not isinstance(loop, BackgroundLoop):
            raise TypeError(f"loop must be an asgibridge BackgroundLoop, got {loop!r}")
        self.app = app
        #: What requests and the lifespan call: ``app`` itself, or an ASGI 2 app wrapped.
        self._app3: ASGIApp = single_callable(app)
        self.lifespan = lifespan
        self._startup_timeout = check_timeout("startup_timeout", startup_timeout)
        self._shutdown_timeout = check_timeout("shutdown_timeout", shutdown_timeout)
        self._background_timeout = check_timeout("background_timeout", background_timeout)
        self._send_buffer = check_count("send_buffer", send_buffer, 1)
        self._read_chunk_size = check_count("read_chunk_size", read_chunk_size, 1)
        self._root_path_from_script_name = bool(root_path_from_script_name)
        self._own_loop = loop is None
        self._loop = loop if loop is not None else BackgroundLoop("asgibridge-asgi")
        self._lock = threading.Lock()
        self._status = _NEW
        self._pid = 0
        self._failure: LifespanError | None = None
        self._state: dict[str, Any] | None = None
        self._runner: LifespanRunner | None = None
        self._aloop: Any = None
        self._post: Callable[..., Any] = _not_started
        self._loop_ident = 0
        self._launcher = Launcher(None)
        _bridges.add(self)

    def __repr__(self) -> str:
        return f"<AsgiToWsgi app={self.app!r} lifespan={self.lifespan!r} status={self._status}>"

    # ----------------------------------------------------------------- process life

    @property
    def started(self) -> bool:
        """True when startup has completed in this process and requests reach the app."""
        return self._status == _READY and self._pid == os.getpid()

    @property
    def state(self) -> dict[str, Any] | None:
        """The lifespan ``state`` dict of this process (``None`` before startup or without lifespan).

        Every request scope gets a shallow copy as ``scope["state"]``.
        """
        return self._state

    def start(self) -> None:
        """Start the loop and run lifespan startup now, instead of at the first request.

        Safe to call from several threads and more than once; only the first
        call in each process does the work. Call it at import time to make a
        broken startup fail the deployment (``gunicorn --preload`` then runs
        startup in the parent, and again in every worker).

        :raises LifespanError: startup failed, timed out or (with
            ``lifespan="on"``) is not supported by the app; the cause is
            chained. The same error is raised again by later calls.
        :raises SchedulerError: the bridge was closed.
        """
        if self._status == _READY and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid not in (0, os.getpid()) and self._status != _CLOSED:
                self._forget_parent(keep_lock=True)  # forked without the at-fork hook
            status = self._status
            if status == _READY:
                return
            if status == _FAILED:
                failure = self._failure
                assert failure is not None
                raise LifespanError(*failure.args) from failure.__cause__
            if status == _CLOSED:
                raise SchedulerError(
                    "this AsgiToWsgi bridge is closed; create a new one to serve requests again"
                )
            ref = self._loop.ref()
            _started.add(self)
            self._pid = os.getpid()
            self._aloop = ref.loop
            self._post = ref.post
            launcher = self._launcher = Launcher(ref.loop)
            ref.post(watch, launcher)  # wake-ups by eventfd where possible (_launch)
            thread = self._loop.thread
            self._loop_ident = (thread.ident or 0) if thread is not None else 0
            if self.lifespan == "off":
                self._status = _READY
                return
            runner = self._runner = LifespanRunner(self._app3)
            uses, failure = run_startup(self._loop, runner, self.lifespan, self._startup_timeout)
            if not uses:  # A12: served without lifespan, so no lifespan.shutdown either
                self._runner = None
            if failure is None:
                self._state = runner.state if uses else None
                self._status = _READY
                return
            self._failure = failure
            self._status = _FAILED
            raise failure

    def _forget_parent(self, keep_lock: bool = False) -> None:
        """In a forked child: the parent's loop, lifespan and tasks do not exist here."""
        if not keep_lock:  # another thread may have held it at fork time
            self._lock = threading.Lock()
        if self._status != _CLOSED:
            self._status = _NEW
        self._pid = 0
        self._failure = None
        self._state = None
        self._runner = None
        self._aloop = None
        self._post = _not_started
        self._loop_ident = 0
        self._launcher = Launcher(None)

    def close(self, timeout: float | None = None) -> None:
        """Shut down: wait for running requests, run lifespan shutdown, stop the loop.

        :param timeout: overrides ``shutdown_timeout`` for this call.

        Idempotent. Requests arriving afterwards are answered with 503. Called
        automatically at interpreter exit. A failed or timed-out shutdown is
        logged, not raised.
        """
        bound = self._shutdown_timeout if timeout is None else check_timeout("timeout", timeout)
        with self._lock:
            status = self._status
            self._status = _CLOSED
            mine = self._pid == os.getpid()
            _started.discard(self)
        if status in (_READY, _FAILED) and mine and self._aloop is not None:
            try:
                tasks = self._launcher.tasks
                self._loop.call(shutdown, tasks, self._runner, bound, status == _READY)
                self._loop.call(unwatch, self._launcher)  # a shared loop runs on
            except SchedulerError:
                logger.debug("the background loop was already closed at shutdown")
        if self._own_loop:
            self._loop.close(5.0 if bound is None else bound)

    def __enter__(self) -> AsgiToWsgi:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------------- requests

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request through the ASGI application."""
        if self._status is not _READY:  # reset in forked children by the at-fork hook
            refusal = self._not_ready()
            if refusal is not None:
                return plain(start_response, *refusal)
        state = thread_state()
        home = state.home
        if home is None:
            home = current_home(state)
        if home.ident == self._loop_ident:
            raise SchedulerError(ON_LOOP_THREAD)
        ex = Exchange(self, state, home)
        error = ex.preread(environ)
        if error is not None:
            return plain(start_response, "400 Bad Request", error)
        ex.scope = environ_to_scope(
            environ, self._root_path_from_script_name, {"http.response.pathsend": {}}, self._state
        )
        ex.context = copy_context()
        launcher = self._launcher
        launcher.queue.append(ex)
        try:
            if not launcher.posted:
                launcher.posted = True
                fd = launcher.fd
                if fd >= 0 and not self._aloop.is_closed():
                    eventfd_write(fd, 1)  # the loop watches it (_launch)
                else:  # raises RuntimeError on a closed loop
                    self._post(launcher.launch_all)
        except RuntimeError:  # the loop was closed under us (a shared loop, closed elsewhere)
            launcher.posted = False
            launcher.queue.clear()
            return plain(start_response, "503 Service Unavailable", LOOP_STOPPED)
        item = ex.next_item()
        if item.__class__ is bytes:
            pending = ex.pending
            try:
                headers = wsgi_headers(ex.start_headers)
                start_response(status_line(ex.start_status), headers)
            except Exception as exc:
                return bad_start(ex, exc, start_response)
            length = declared_length(headers)
            if pending and pending[0] is END:
                pending.popleft()
                ex.accepting = False  # ex.finish() inline: most requests offer no job
                if ex.jobs_seen:
                    ex.finish()
                if 0 <= length < len(item):  # never more than the app's Content-Length (A14)
                    cut_body(ex.scope, len(item) - length)
                    item = item[:length]
                return [item]
            return ResponseBody(ex, item, length)
        ex.finish()
        if item is END:
            try:
                start_response(status_line(ex.start_status), wsgi_headers(ex.start_headers))
            except Exception as exc:
                return bad_start(ex, exc, start_response)
            return []
        if item.__class__ is Failure:  # logged once already; exc_info for test clients (A6)
            return plain(start_response, "500 Internal Server Error", ERROR_TEXT, item.exc)
        assert item.__class__ is PathSend
        return send_file(ex, item.path, environ, start_response, self._read_chunk_size)

    def _not_ready(self) -> tuple[str, str] | None:
        try:
            self.start()
        except LifespanError:
            return ("500 Internal Server Error", "Internal Server Error")
        except SchedulerError:
            return ("503 Service Unavailable", "Service Unavailable")
        return None
