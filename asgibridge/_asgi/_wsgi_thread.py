"""The WSGI thread's part of one ``AsgiToWsgi`` request: wait for the loop, serve it meanwhile.

Theory of operation
-------------------
The WSGI thread sleeps on its core :class:`~asgibridge._core.ThreadHome`
inbox, whose wake-up is an ``eventfd`` write that releases the GIL for the
system call (waking a ``SimpleQueue`` or ``Lock`` waiter happens with the GIL
held, and under gunicorn that cross-CPU wake was a fifth of all GIL time). A
wake-up is only a hint; the data lives in the exchange's ``pending`` deque,
and the eventfd counter means a hint is never lost, whatever the WSGI thread
was doing. :meth:`WsgiThread.next_item` is that wait.

While it waits, the WSGI thread also does what only it can do for the app:

* read ``wsgi.input`` when a ``receive()`` asked for more body
  (``read_wanted``, see :mod:`._request`);
* run thread-sensitive ``sync_to_async`` jobs sent by the app: the request
  task's home is the exchange itself, so such calls run on the request's own
  sync thread, as they would under ``async_to_sync``.

Backpressure (rule A8)
    A ``send()`` that finds ``limit`` body messages waiting parks on a future
    (``send_waiter``); :meth:`WsgiThread.next_item` resolves it once the deque
    has drained to ``low``, so one loop wake-up buys ``limit - low`` messages.
    The handshake is lock-free: ``send()`` publishes its future and then
    re-checks the length; the WSGI thread pops and then reads the future.
    Under the GIL one of the two always sees the other.

The end of a request
    Once the WSGI side is finished with the request (:meth:`WsgiThread.finish`),
    the exchange stops accepting jobs and any later ones (from background work)
    go to the process-wide lane instead, as do jobs still queued in the inbox.
    ``finish`` takes no lock unless a job was offered (``jobs_seen``): it
    clears ``accepting`` and then reads ``jobs_seen``, while :meth:`submit`,
    under ``_home_lock``, sets ``jobs_seen`` and then reads ``accepting``.
    Under the GIL these steps interleave in some order, so a ``submit`` that
    saw ``accepting`` set had set ``jobs_seen`` before ``finish`` read it;
    ``finish`` then takes the lock, which waits until that job is in the
    inbox, and moves it on. A ``submit`` that saw it cleared sends its job to
    the lane itself. (A lock taken on every request cost about 2,000
    instructions, as a ``with`` block: the WSGI thread may be the main
    thread, where ``acquire()``/``release()`` could leak it to a
    ``KeyboardInterrupt``.)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from .._core import (
    Job,
    ThreadHome,
    ThreadState,
    default_scheduler,
    rehome_leftover_jobs,
    run_job,
)

if TYPE_CHECKING:
    import asyncio

    from ._bridge import Bridge

__all__ = ["WsgiThread"]

# Guards the hand-over of thread-sensitive jobs against the end of a request
# (taken once per request and once per job; never contended for long).
_home_lock = threading.Lock()


class WsgiThread(ThreadHome):
    """The WSGI-thread half of :class:`~._exchange.Exchange` (its slots are there).

    As a :class:`~asgibridge._core.ThreadHome` it is also where the task's
    thread-sensitive ``sync_to_async`` calls run: on the WSGI thread, while
    that thread is serving the request.
    """

    if not TYPE_CHECKING:  # the fields are slots of Exchange; mypy checks them there
        __slots__ = ()

    accepting: bool
    bridge: Bridge
    jobs_seen: bool
    pending: deque[Any]
    read_wanted: bool
    send_waiter: asyncio.Future[None] | None
    state: ThreadState

    if TYPE_CHECKING:  # provided by RequestBody and Exchange

        def read_body(self) -> None: ...
        def client_gone(self) -> None: ...

    def next_item(self) -> Any:
        """Block until the loop has something for this request and return it.

        Meanwhile serve body reads and thread-sensitive jobs for the app.
        """
        pending = self.pending
        while True:
            if self.read_wanted:
                self.read_body()
            if pending:
                item = pending.popleft()
                waiter = self.send_waiter
                if waiter is not None and len(pending) <= self.bridge._send_buffer >> 1:
                    self.send_waiter = None
                    self.bridge._post(_resolve, waiter, None)
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

    def finish(self) -> None:
        """The WSGI side is done with the request: stop taking jobs, hand leftovers on."""
        # No lock unless a job was offered (module docstring, "The end of a request").
        self.accepting = False
        if self.jobs_seen:
            # A submit() that saw accepting set may still be queueing its job: it
            # holds the lock until the job is in. A with block, not acquire()/
            # release(): a KeyboardInterrupt between the two would leak the lock.
            with _home_lock:
                pass
            rehome_leftover_jobs(self.state)

    def abandon(self) -> None:
        """The server closed the response early: finish, and cancel the ASGI task (A4)."""
        self.finish()
        try:
            self.bridge._post(_client_gone, self)
        except RuntimeError:  # the loop is already closed
            pass

    # ThreadHome protocol: called on the loop thread by thread-sensitive sync_to_async.
    def submit(self, job: Job) -> None:
        """Run ``job`` on this request's WSGI thread, or on the shared lane once it has left."""
        with _home_lock:
            self.jobs_seen = True  # before accepting is read (module docstring)
            if self.accepting:
                ThreadHome.submit(self, job)
                self.inbox.wake()
                return
        default_scheduler().default_lane().submit(job)


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _client_gone(ex: WsgiThread) -> None:
    ex.client_gone()
