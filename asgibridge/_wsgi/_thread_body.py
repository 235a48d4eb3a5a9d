"""Thread mode's request body: the worker's ``pull`` and the loop's read-ahead receiver.

Theory of operation
-------------------
The request task reads the start of the body on the loop before a worker
is taken (``prefetch``, rule C15); those chunks are in ``body`` when the app
starts (a body that came whole in one message is in ``wsgi.input`` instead,
which then never pulls). A ``wsgi.input`` read past them parks the worker and asks the
request task (``want_rx``) to start the *receiver* task on the loop. It
reads ahead up to ``body_window`` bytes into the ``body`` deque that the
worker pops from, so a long upload costs a wake per window, not a round
trip per read (rule C10). It also turns ``http.disconnect`` into the
``GONE`` phase, which makes every later transport operation in the worker
raise ``ClientDisconnected`` (rules C11, C14). A streaming response starts
the receiver too, purely to notice a client that leaves.

A worker that waits for the client longer than ``Admission.STALL_AFTER``
gives its admission slot to queued requests (C15), and one that waits
``body_timeout`` seconds gives up (``timed_out``; the client gets a 408 if
nothing was sent).

:class:`ThreadBody` is a part of :class:`~._thread_exchange.ThreadExchange`
(its base class), kept in its own module for size; it holds the fields it
writes and declares the ones it reads.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from .._core import Signal
from .._types import Receive
from ..errors import ClientDisconnected, ServerProtocolError
from ._admission import Admission
from ._thread_phase import GONE, Phase

__all__ = ["ThreadBody"]

logger = logging.getLogger("asgibridge.wsgi")


class ThreadBody:
    """The request-body half of a :class:`~._thread_exchange.ThreadExchange`."""

    # The fields this half writes; the exchange declares the rest.
    __slots__ = (
        "body",
        "body_b",
        "body_done",
        "parked",
        "rx_paused",
        "timed_out",
        "tq",
        "unread",
        "wake_posted",
        "want_rx",
    )

    adm: Admission[Any] | None
    body: deque[bytes]
    body_b: int
    body_done: bool
    body_timeout: float | None
    body_window: int
    lock: threading.Lock
    parked: bool
    phase: Phase
    reason: str
    receive: Receive
    rx_paused: bool
    rx_signal: Signal | None
    signal: Signal
    timed_out: bool
    tq: SimpleQueue[None] | None
    unread: bool
    wake_posted: bool
    want_rx: bool

    def _post(self, callback: Callable[[], None]) -> None:
        raise NotImplementedError

    def _mark_gone(self, reason: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ worker side

    def pull(self) -> tuple[bytes, bool]:
        """The next request body chunk, waiting for it if needed."""
        if self.body_done:
            # The whole body is in ``body``: the receiver writes none of these
            # fields any more (it set ``body_done`` last, under the lock, after
            # its appends, and never pauses once it is set), so this worker
            # alone reads and writes them: no lock. Same results as below.
            body = self.body
            if body:
                chunk = body.popleft()
                self.body_b -= len(chunk)
                return chunk, bool(body)
            return b"", False
        lock = self.lock
        while True:
            post = False
            lock.acquire()  # not ``with``: half the instructions, once per read
            try:
                body = self.body
                if body:
                    data = body.popleft()
                    self.body_b -= len(data)
                    more = bool(body) or not self.body_done
                    resume = self.rx_paused and self.body_b < self.body_window
                    if resume:
                        self.rx_paused = False
                elif self.body_done:
                    return b"", False
                elif self.phase is GONE:
                    raise ClientDisconnected(self.reason)
                else:
                    data = None
                    tq = self._park()
                    if not self.want_rx:
                        self.want_rx = True
                        post = not self.wake_posted
                        self.wake_posted = True
            finally:
                lock.release()
            if data is not None:
                if resume:
                    rx_signal = self.rx_signal
                    if rx_signal is not None:
                        self._post(rx_signal.set)
                return data, more
            if post:
                self._post(self.signal.set)
            if self._wait_for_client(tq):
                continue
            with lock:
                if self.body or self.body_done or self.phase is GONE:
                    continue
                self.parked = False
                self.timed_out = True
            raise ClientDisconnected(
                f"the client sent no request body data for {self.body_timeout}s "
                "(WsgiToAsgi body_timeout); the upload is treated as abandoned"
            )

    def _park(self) -> SimpleQueue[None]:
        """With ``lock`` held (worker): mark the worker parked; the queue it parks on.

        Made on the first park, under the lock: most requests never park, and
        the request task only reaches ``tq`` while ``parked`` is set (:meth:`_unpark`).
        """
        self.parked = True
        tq = self.tq
        if tq is None:
            tq = self.tq = SimpleQueue()
        return tq

    def _unpark(self) -> None:
        """With ``lock`` held, the worker parked (request task): wake the worker."""
        self.parked = False
        tq = self.tq
        assert tq is not None  # made by _park() before it set ``parked``
        tq.put(None)

    def _wait_for_client(self, tq: SimpleQueue[None]) -> bool:
        """Park until woken (True) or until ``body_timeout`` passes (False).

        Past ``Admission.STALL_AFTER`` the worker counts as stalled (C15): it
        gives its admission slot to queued requests while it waits.
        """
        timeout = self.body_timeout
        adm = self.adm
        first = Admission.STALL_AFTER
        if adm is None or (timeout is not None and timeout <= first):
            try:
                tq.get(timeout=timeout)
            except Empty:
                return False
            return True
        try:
            tq.get(timeout=first)
            return True
        except Empty:
            pass
        stalled = adm.stall()
        try:
            tq.get(timeout=None if timeout is None else timeout - first)
        except Empty:
            return False
        finally:
            if stalled:
                adm.resume()
        return True

    # -------------------------------------------------------------- loop side

    async def _receive_loop(self) -> None:
        """Read the request body ahead of the worker, and watch for a disconnect."""
        lock = self.lock
        receive = self.receive
        rx_signal = self.rx_signal
        assert rx_signal is not None
        try:
            while True:
                while not self.body_done:
                    with lock:
                        if self.body_b < self.body_window:
                            break
                        self.rx_paused = True
                    await rx_signal.wait()
                msg = await receive()
                typ = msg.get("type")
                if typ == "http.request":
                    if self.unread and not msg.get("more_body", False):
                        self.unread = False  # the body-less request's own message
                        continue
                    if self.body_done:
                        # Nothing may follow the last body chunk but http.disconnect;
                        # stop watching rather than spin on a confused server.
                        logger.warning(
                            "receive() returned another 'http.request' after the request "
                            "body ended; no longer watching for a disconnect"
                        )
                        return
                    data = msg.get("body", b"")
                    with lock:
                        if data:
                            self.body.append(data)
                            self.body_b += len(data)
                        if not msg.get("more_body", False):
                            self.body_done = True
                        if self.parked:
                            self._unpark()
                elif typ == "http.disconnect":
                    with lock:
                        self._mark_gone(
                            "the client disconnected before sending the whole request body"
                            if not self.body_done
                            else "the client disconnected"
                        )
                    self.signal.set()
                    return
                else:
                    raise ServerProtocolError(
                        f"receive() returned a {typ!r} message during an HTTP request"
                    )
        except Exception as exc:
            with lock:
                self._mark_gone(f"receive() failed: {exc!r}")
            self.signal.set()
