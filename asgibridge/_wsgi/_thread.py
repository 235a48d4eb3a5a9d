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
from typing import Any, cast

from .._core import Job, current_batching_ref, run_job_async
from .._types import Receive, Scope, Send
from ..errors import ClientDisconnected, RequestRejected
from ._http import (
    BODYLESS_METHODS,
    BODYLESS_PROTOCOLS,
    Bridge,
    Executor,
    Hook,
    answer,
    left_early,
    reject,
)
from ._input import EMPTY_INPUT, Input
from ._thread_exchange import ThreadExchange

__all__ = ["THREAD", "call_in_thread", "serve_thread"]

_EMPTY: dict[str, Any] = {}
#: The exchange's chunks when it holds none: a request without a body (its
#: ``wsgi.input`` is ``EMPTY_INPUT``) or whose body came whole in one message
#: (its ``wsgi.input`` has it). Never written: the receiver appends only while
#: the body has not ended. A tuple, so that a change that broke this fails loudly.
_NO_BODY = cast("deque[bytes]", ())


async def serve_thread(bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request with the app on a worker thread (the request task)."""
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
    ):  # no body: the server's empty http.request stays unread
        bodyless = True
        body = _NO_BODY
        got = 0
        done = True
        inp: Any = EMPTY_INPUT
    else:  # the start of the body, read before a worker is taken (C15)
        bodyless = False
        read = await _read_start(receive, length, bridge.prefetch)
        if read is None:
            return  # the client left before the app ran: nothing to answer
        body, got, done, inp = read
    adm = bridge._adm
    if adm is None or bridge._pool_pid != getpid():
        adm = bridge._admission()  # the first request, or the first since close() or a fork
    ex = ThreadExchange(
        current_batching_ref(), receive, send, scope.get("extensions") or _EMPTY,
        bridge, environ, body, got, done, bodyless, adm,
    )  # fmt: skip
    environ["wsgi.input"] = Input(ex.pull, length) if inp is None else inp
    try:
        adm.admit(ex)
        await ex.signal.wait()  # dispatch()'s first round inline: most requests need no other
        if ex.outcome is None:
            await ex.dispatch()
        msgs = ex.settled_messages()
        if msgs:
            try:
                for msg in msgs:
                    await send(msg)
            except Exception as exc:
                ex.send_failed(exc)
        if ex.rx is not None:
            await ex.stop_receiver()
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


async def _read_start(
    receive: Receive, length: int | None, prefetch: int
) -> tuple[deque[bytes], int, bool, Any] | None:
    """Receive body chunks until the body ends or ``prefetch`` bytes are in.

    Returns (the chunks for the exchange, their size, whether the body ended,
    the ``wsgi.input`` when it is already known, else None), or None when the
    client left. A body that comes whole in one message goes straight into its
    ``wsgi.input`` (as greenlet mode does), which then never pulls.
    """
    msg = await receive()
    if msg["type"] != "http.request" and left_early(msg):
        return None
    if not msg.get("more_body", False):  # the whole body in one message
        data = msg.get("body", b"")
        if data:
            return _NO_BODY, 0, True, Input(_no_pull, length, data, False)
        return _NO_BODY, 0, True, None if length else EMPTY_INPUT
    body: deque[bytes] = deque()
    got = 0
    while True:
        data = msg.get("body", b"")
        if data:
            body.append(data)
            got += len(data)
        if not msg.get("more_body", False):
            return body, got, True, None
        if got >= prefetch:
            return body, got, False, None
        msg = await receive()
        if msg["type"] != "http.request" and left_early(msg):
            return None


def _no_pull() -> tuple[bytes, bool]:
    """The ``pull`` of a ``wsgi.input`` given the whole body: never called (no more to come)."""
    raise AssertionError("wsgi.input pulled more of a body that had ended")


# ------------------------------------------------------------------ the worker


async def call_in_thread(bridge: Bridge, fn: Hook) -> Any:
    """Run ``fn()`` on one of the bridge's worker threads (lifespan hooks)."""
    return await run_job_async(Job(fn, (), {}, contextvars.copy_context()), bridge.pool)


#: Thread mode, as ``WsgiToAsgi``'s executor table names it.
THREAD = Executor(serve_thread, call_in_thread)
