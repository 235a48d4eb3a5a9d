"""Thread mode, top-down: one ``WsgiToAsgi`` request from the loop to a worker thread and back.

Theory of operation
-------------------
Thread mode is dominated by the cost of waking threads: waking a sleeping
thread on another CPU costs 25-30 us, a loop -> thread -> loop round trip
65-90 us however lean the Python is. So a request is built to cost exactly
**one** round trip when its response is small:

1. :func:`serve_thread` (the request task) builds the environ and receives
   the first body chunks *on the loop* (up to ``prefetch`` bytes, or the
   whole body when it is small). A worker is only taken once that is done,
   so clients that stall before sending a body cannot hold workers (rule
   C15).
2. It makes the request's :class:`~._thread_exchange.ThreadExchange`, which
   owns the request from then on, and admits its job
   (:class:`~._admission.Admission`): only ``active_workers`` requests run
   at once unless the running ones look blocked, because extra runnable
   threads only add GIL hand-offs.
3. The worker (:meth:`~._thread_exchange.ThreadExchange.run`, the request's
   job) runs the app and its iterable. Messages
   that complete the response are queued, not sent; the request's outcome
   (one ``post`` to the loop, at the end of :meth:`~._thread_exchange.ThreadExchange.run`)
   wakes the request task, which sends them. Hello world: one hand-off
   there, one back. The worker then runs the next queued request on the same
   thread, if there is one (the pool asks the admission: its ``after_job``).
4. Only a response that streams (a non-final chunk, or ``write()``) wakes
   the request task early, once per batch: the worker appends to
   ``pending`` under a lock and posts a wake only if none is outstanding.
   The request task drains the batch with ``send()``. The worker blocks
   (on a per-request ``SimpleQueue``) only when more than ``send_window``
   messages or ``send_window_bytes`` bytes are unsent (rule C13).
5. Request body reads past the prefetched chunks start a receiver task on
   the loop (:mod:`._thread_body`).

The worker never climbs back into the public adapter: its stack is the
core's pool, the exchange and the PEP 3333 side.
"""

from __future__ import annotations

import contextvars
from collections import deque
from os import getpid
from typing import Any

from .._core import Job, current_batching_ref, run_job_async
from .._types import Message, Receive, Scope, Send
from ..errors import ClientDisconnected, RequestRejected
from ._http import Bridge, Executor, Hook, answer, body_message, left_early, open_request, reject
from ._input import EMPTY_INPUT, Input
from ._thread_exchange import ThreadExchange

__all__ = ["THREAD", "call_in_thread", "serve_thread"]

_EMPTY: dict[str, Any] = {}


async def serve_thread(bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request with the app on a worker thread (the request task)."""
    try:
        environ, length, bodyless = open_request(bridge._environ, scope)
    except RequestRejected as exc:
        await reject(send, exc)
        return
    # Read the start of the body on the loop, before a worker is taken (C15).
    body: deque[bytes] = deque()
    got = 0
    done = True
    if bodyless:  # the server's empty http.request stays unread
        environ["wsgi.input"] = EMPTY_INPUT
    else:
        msg = await receive()
        if msg["type"] != "http.request" and left_early(msg):
            return
        if not msg.get("more_body", False):
            data = msg.get("body", b"")
            if data:
                body.append(data)
                got = len(data)
            elif not length:
                environ["wsgi.input"] = EMPTY_INPUT
        else:
            read = await _prefetch(receive, msg, body, bridge.prefetch)
            if read is None:
                return  # the client left before the app ran: nothing to answer
            got, done = read
    adm = bridge._adm
    if adm is None or bridge._pool_pid != getpid():
        adm = bridge._admission()  # the first request, or the first since close() or a fork
    ex = ThreadExchange(
        current_batching_ref(), receive, send, scope.get("extensions") or _EMPTY,
        bridge, environ, body, got, done, bodyless, adm,
    )  # fmt: skip
    if "wsgi.input" not in environ:
        environ["wsgi.input"] = Input(ex.pull, length)
    try:
        adm.admit(ex)
        await ex.dispatch()
    except BaseException:
        ex.cancel()
        raise
    assert ex.outcome is not None
    ok, value = ex.outcome
    if not ok:
        if ex.timed_out and ex.sent_n == 0 and isinstance(value, ClientDisconnected):
            await answer(send, 408, b"Request Timeout: the request body stalled\n")
            return
        raise value
    error = ex.send_error
    if error is not None and not isinstance(error, OSError):
        raise error


async def _prefetch(
    receive: Receive, msg: Message, body: deque[bytes], prefetch: int
) -> tuple[int, bool] | None:
    """Receive body chunks into ``body`` until it ends or ``prefetch`` bytes are in.

    Returns (bytes received, whether the body ended), or None when the client left.
    """
    data = msg.get("body", b"")
    got = 0
    while True:
        if data:
            body.append(data)
            got += len(data)
        if not msg.get("more_body", False):
            return got, True
        if got >= prefetch:
            return got, False
        msg = await receive()
        if msg["type"] != "http.request":
            try:
                body_message(msg)
            except ClientDisconnected:
                return None
        data = msg.get("body", b"")


# ------------------------------------------------------------------ the worker


async def call_in_thread(bridge: Bridge, fn: Hook) -> Any:
    """Run ``fn()`` on one of the bridge's worker threads (lifespan hooks)."""
    return await run_job_async(Job(fn, (), {}, contextvars.copy_context()), bridge.pool)


#: Thread mode, as ``WsgiToAsgi``'s executor table names it.
THREAD = Executor(serve_thread, call_in_thread)
