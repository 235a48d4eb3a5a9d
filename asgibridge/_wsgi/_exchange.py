"""The loop side of ``WsgiToAsgi``: one exchange object per request.

Theory of operation
-------------------
Thread mode is dominated by the cost of waking threads: waking a sleeping
thread on another CPU costs 25-30 us, a loop -> thread -> loop round trip
65-90 us however lean the Python is. So a request is built to cost exactly
**one** round trip when its response is small:

1. The request task builds the environ and receives the first body chunks
   *on the loop* (up to ``prefetch`` bytes, or the whole body when it is
   small). A worker is only taken once that is done, so clients that stall
   before sending a body cannot hold workers (rule C15).
2. One job goes to the pool: the worker runs the app and its iterable.
   Messages that complete the response are queued, not sent; the job's
   completion (one ``post`` to the loop) wakes the request task, which
   sends them. Hello world: one hand-off there, one back.
3. Only a response that streams (a non-final chunk, or ``write()``) wakes
   the request task early, once per batch: the worker appends to
   ``pending`` under a lock and posts a wake only if none is outstanding.
   The request task drains the batch with ``send()``. The worker blocks
   (on a per-request ``SimpleQueue``) only when more than ``send_window``
   messages or ``send_window_bytes`` bytes are unsent (rule C13).
4. Request body reads past the prefetched chunks start a *receiver* task
   on the loop. It reads ahead up to ``body_window`` bytes into a deque
   that the worker pops from, so a long upload costs a wake per window,
   not a round trip per read. It also turns ``http.disconnect`` into
   ``gone``, which makes every later transport operation in the worker
   raise ``ClientDisconnected`` (rules C11, C14). A streaming response
   starts the receiver too, purely to notice a client that leaves.

Greenlet mode needs none of this: the app runs on the loop thread, and a
transport operation is ``await_in_greenlet(send(...))``, about 1 us.

Both loops are supported: asyncio directly, trio through ``LoopRef.post``
and ``trio.lowlevel`` (helpers below).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from queue import Empty, SimpleQueue
from typing import Any

import anyio

from .._core import (
    Background,
    LoopRef,
    Signal,
    await_in_greenlet,
    checkpoint,
    current_loop_ref,
    make_signal,
    spawn,
)
from .._types import Message
from ..errors import ClientDisconnected, ServerProtocolError

__all__ = ["Admission", "GreenletExchange", "ThreadExchange"]

logger = logging.getLogger("asgibridge.wsgi")

ASGIReceive = Callable[[], Awaitable[Message]]
ASGISend = Callable[[Message], Awaitable[None]]


def body_message(msg: Message) -> tuple[bytes, bool]:
    """(body, more_body) of an ``http.request`` message, or raise for anything else."""
    typ = msg.get("type")
    if typ == "http.request":
        return msg.get("body", b""), msg.get("more_body", False)
    if typ == "http.disconnect":
        raise ClientDisconnected("the client disconnected before sending the whole request body")
    raise ServerProtocolError(
        f"receive() returned a {typ!r} message during an HTTP request; the server sent "
        "something other than 'http.request' or 'http.disconnect'"
    )


# ------------------------------------------------------------------------ admission


class Admission:
    """Keeps the number of *runnable* worker threads low, and grows it when they block.

    Worker threads only run Python one at a time (the GIL), and every extra
    runnable thread adds GIL hand-offs: measured here, a Flask "hello" at 16
    requests in flight costs ~90 us per request with one or two runnable
    workers and ~160 us with sixteen. So at most ``soft`` jobs run at once;
    more wait in a FIFO queue. A worker that finishes a job takes the next
    queued request itself (see ``_job_main`` in :mod:`asgibridge.wsgi`),
    exactly like a pool backlog, so a busy slot costs no thread wake-up.

    While requests are queued, one checker task per busy period wakes every
    ``GROW_DELAY`` seconds. If no job finished since its last look, the
    running jobs are blocked (I/O, sleeps, slow clients), so it starts more
    queued requests on threads of their own, doubling the running count each
    time, up to ``hard`` (the pool's ``max_workers``). An I/O-bound app thus
    gets all its threads within milliseconds; a CPU-light app keeps the GIL
    calm.

    Queue entries are :class:`ThreadExchange` objects; their ``admitted``
    flag is set under the lock when their job is submitted, and entries
    whose request went away are skipped lazily, so every operation is O(1).

    Stalled uploads (rule C15): a worker whose ``wsgi.input`` read has waited
    ``STALL_AFTER`` seconds for the client's next bytes calls :meth:`stall`.
    Up to ``max_stalled`` such workers stop counting as ``active`` while they
    wait (:meth:`resume` counts them again), and a freed slot starts the next
    queued request at once. So clients that stop sending halfway through a
    body hold threads, not slots: with ``active + stalled`` jobs running and a
    submission only while ``active < hard``, the pool never needs more than
    ``hard + max_stalled`` threads. Past ``max_stalled``, a waiting worker
    keeps its slot (the old behaviour) until ``body_timeout`` frees it.
    """

    GROW_DELAY = 0.002
    #: Seconds a worker waits for the client in a ``wsgi.input`` read before it
    #: counts as stalled. Uploads that keep flowing never get that far.
    STALL_AFTER = 0.005

    __slots__ = (
        "_lock",
        "active",
        "checking",
        "done",
        "hard",
        "max_stalled",
        "queue",
        "soft",
        "stalled",
        "submit",
    )

    def __init__(
        self, submit: Callable[[Any], None], soft: int, hard: int, max_stalled: int = 0
    ) -> None:
        self.submit = submit
        self.soft = min(soft, hard)
        self.hard = hard
        self.max_stalled = max_stalled
        self._lock = threading.Lock()
        self.active = 0
        self.stalled = 0
        self.done = 0
        self.checking = False
        self.queue: deque[ThreadExchange] = deque()

    def stall(self) -> bool:
        """A worker waits for its client: stop counting it, start a queued request.

        Returns False (nothing changed) when ``max_stalled`` workers already wait.
        """
        with self._lock:
            if self.stalled >= self.max_stalled:
                return False
            self.stalled += 1
            self.active -= 1
            ex = self._pop_live() if self.active < self.soft else None
            if ex is not None:
                self.active += 1
        if ex is not None:
            self.submit(ex.job)
        return True

    def resume(self) -> None:
        """A stalled worker runs again (its data came, or its wait ended)."""
        with self._lock:
            self.stalled -= 1
            self.active += 1

    def admit(self, ex: ThreadExchange) -> None:
        """Start ``ex.job`` now, or queue it (and make sure a checker watches the queue)."""
        with self._lock:
            if self.active < self.soft and not self.queue:
                self.active += 1
                ex.admitted = True
                start = True
            else:
                self.queue.append(ex)
                start = False
                check = not self.checking
                self.checking = True
        if start:
            self.submit(ex.job)
        elif check:
            spawn(ex.ref, self._check)

    def _pop_live(self) -> ThreadExchange | None:
        """Call with the lock held: the next queued request still worth running."""
        queue = self.queue
        while queue:
            ex = queue.popleft()
            if not ex.admitted and not ex.gone:
                ex.admitted = True
                return ex
        return None

    def finished(self) -> ThreadExchange | None:
        """A job ended (called in its worker): the next queued request to run, if any.

        The worker runs it right away, on the same thread: no hand-off, no
        extra runnable thread. None means the slot is free again.
        """
        with self._lock:
            self.done += 1
            ex = self._pop_live()
            if ex is None:
                self.active -= 1
            return ex

    async def _check(self) -> None:
        """Grow past ``soft`` while queued requests wait behind blocked ones."""
        seen = -1
        try:
            while True:
                await anyio.sleep(self.GROW_DELAY)
                starting: list[ThreadExchange] = []
                with self._lock:
                    queue = self.queue
                    while queue and (queue[0].admitted or queue[0].gone):
                        queue.popleft()
                    if not queue:
                        self.checking = False
                        return
                    if self.done == seen:  # nothing finished for a whole period
                        for _ in range(max(1, min(self.active, self.hard - self.active))):
                            ex = self._pop_live()
                            if ex is None:
                                break
                            self.active += 1
                            starting.append(ex)
                    seen = self.done
                for ex in starting:
                    self.submit(ex.job)
        except BaseException:
            # Cancelled with its loop: let the next queued request start a new checker.
            with self._lock:
                self.checking = False
            raise


# --------------------------------------------------------------------------- threads


class ThreadExchange:
    """Per-request state shared by the request task and its worker thread (thread mode).

    Fields written by both sides are guarded by ``lock``; ``tq`` is where the
    worker parks, and any loop-side event that could unblock it puts a token
    there (the worker re-checks its condition after every wake).
    """

    __slots__ = (
        "adm",
        "admitted",
        "app",
        "body",
        "body_b",
        "body_done",
        "body_timeout",
        "body_window",
        "environ",
        "extensions",
        "gone",
        "job",
        "lock",
        "outcome",
        "parked",
        "pending",
        "pending_b",
        "post",
        "queued_b",
        "queued_n",
        "reason",
        "receive",
        "ref",
        "rx",
        "rx_paused",
        "rx_signal",
        "send",
        "send_error",
        "sent_b",
        "sent_n",
        "signal",
        "streaming",
        "timed_out",
        "tq",
        "unread",
        "wake_posted",
        "want_rx",
        "window_b",
        "window_n",
    )

    def __init__(
        self,
        ref: LoopRef,
        receive: ASGIReceive,
        send: ASGISend,
        extensions: Mapping[str, Any],
        *,
        window_n: int,
        window_b: int,
        body_window: int,
        body_timeout: float | None,
    ) -> None:
        self.ref = ref
        self.post = ref.post
        self.receive = receive
        self.send = send
        self.extensions = extensions
        self.window_n = window_n
        self.window_b = window_b
        self.body_window = body_window
        self.body_timeout = body_timeout
        self.lock = threading.Lock()
        self.tq: SimpleQueue[None] = SimpleQueue()
        self.signal = make_signal(ref)
        self.rx_signal: Signal | None = None
        self.rx: Background | None = None
        self.outcome: tuple[bool, Any] | None = None
        self.pending: list[Message] = []
        self.pending_b = 0
        self.queued_n = self.sent_n = 0
        self.queued_b = self.sent_b = 0
        self.wake_posted = False
        self.parked = False
        self.want_rx = False
        self.rx_paused = False
        self.streaming = False
        self.timed_out = False
        self.gone = False
        self.reason = ""
        self.send_error: BaseException | None = None
        self.body: deque[bytes] = deque()
        self.body_b = 0
        self.body_done = False
        # True while the server's (empty) http.request has not been received:
        # a request without a body starts the app without calling receive().
        self.unread = False
        self.admitted = False
        self.adm: Admission | None = None
        self.job: Any = None
        self.app: Any = None
        self.environ: dict[str, Any] = {}

    # ------------------------------------------------------------ worker side

    def _post(self, callback: Callable[[], None]) -> None:
        try:
            self.post(callback)
        except RuntimeError:  # the loop is closed: nobody will ever send this
            with self.lock:
                self._mark_gone("the event loop serving this request has closed")
            raise ClientDisconnected(self.reason) from None

    def push(self, messages: list[Message], final: bool, nbytes: int) -> None:
        """Queue response messages; see :class:`~asgibridge._wsgi_response.Transport`."""
        lock = self.lock
        with lock:
            if self.gone:
                raise ClientDisconnected(self.reason)
            self.pending.extend(messages)
            self.pending_b += nbytes
            self.queued_n += len(messages)
            self.queued_b += nbytes
            if final:
                return  # the job's completion wakes the request task
            post = not self.wake_posted
            self.wake_posted = True
        if post:
            self._post(self.signal.set)
        while True:
            with lock:
                if self.gone:
                    raise ClientDisconnected(self.reason)
                if (
                    self.queued_n - self.sent_n <= self.window_n
                    and self.queued_b - self.sent_b <= self.window_b
                ):
                    return
                self.parked = True
            self.tq.get()

    def push_wait(self, messages: list[Message]) -> None:
        """Send ``messages`` and return once the request task has sent them."""
        lock = self.lock
        with lock:
            if self.gone:
                raise ClientDisconnected(self.reason)
            self.pending.extend(messages)
            self.queued_n += len(messages)
            target = self.queued_n
            post = not self.wake_posted
            self.wake_posted = True
        if post:
            self._post(self.signal.set)
        while True:
            with lock:
                if self.sent_n >= target:
                    return
                if self.gone:
                    raise ClientDisconnected(self.reason)
                self.parked = True
            self.tq.get()

    def pull(self) -> tuple[bytes, bool]:
        """The next request body chunk, waiting for it if needed."""
        lock = self.lock
        while True:
            post = False
            with lock:
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
                elif self.gone:
                    raise ClientDisconnected(self.reason)
                else:
                    data = None
                    self.parked = True
                    if not self.want_rx:
                        self.want_rx = True
                        post = not self.wake_posted
                        self.wake_posted = True
            if data is not None:
                if resume:
                    rx_signal = self.rx_signal
                    if rx_signal is not None:
                        self._post(rx_signal.set)
                return data, more
            if post:
                self._post(self.signal.set)
            if self._wait_for_client():
                continue
            with lock:
                if self.body or self.body_done or self.gone:
                    continue
                self.parked = False
                self.timed_out = True
            raise ClientDisconnected(
                f"the client sent no request body data for {self.body_timeout}s "
                "(WsgiToAsgi body_timeout); the upload is treated as abandoned"
            )

    def _wait_for_client(self) -> bool:
        """Park until woken (True) or until ``body_timeout`` passes (False).

        Past ``Admission.STALL_AFTER`` the worker counts as stalled (C15): it
        gives its admission slot to queued requests while it waits.
        """
        timeout = self.body_timeout
        adm = self.adm
        first = Admission.STALL_AFTER
        if adm is None or (timeout is not None and timeout <= first):
            try:
                self.tq.get(timeout=timeout)
            except Empty:
                return False
            return True
        try:
            self.tq.get(timeout=first)
            return True
        except Empty:
            pass
        stalled = adm.stall()
        try:
            self.tq.get(timeout=None if timeout is None else timeout - first)
        except Empty:
            return False
        finally:
            if stalled:
                adm.resume()
        return True

    # -------------------------------------------------------------- loop side

    def _mark_gone(self, reason: str) -> None:
        """Call with ``lock`` held: every later worker operation raises."""
        if not self.gone:
            self.gone = True
            self.reason = reason
        if self.parked:
            self.parked = False
            self.tq.put(None)

    def abandon(self, reason: str) -> None:
        """The request task is going away: release the worker."""
        with self.lock:
            self._mark_gone(reason)
        rx = self.rx
        if rx is not None:
            rx.cancel()

    def on_settle(self, job: Any, ok: bool, value: Any) -> None:
        """Job completion callback (runs on the loop).

        ``_job_main`` posts it itself with the request's outcome; the core
        posts it again when the thread's job ends, which is then ignored.
        """
        if self.outcome is None:
            self.outcome = (ok, value)
            self.signal.set()

    async def dispatch(self) -> None:
        """Send what the worker queues until its job has finished."""
        lock = self.lock
        send = self.send
        signal = self.signal
        while True:
            await signal.wait()
            done = self.outcome is not None
            with lock:
                msgs = self.pending
                nbytes = self.pending_b
                if msgs:
                    self.pending = []
                    self.pending_b = 0
                self.wake_posted = False
                want_rx = self.want_rx
            if msgs:
                if not self.gone:
                    try:
                        for msg in msgs:
                            await send(msg)
                    except Exception as exc:
                        self.send_error = exc
                        with lock:
                            self._mark_gone(f"sending the response failed: {exc!r}")
                    else:
                        last = msgs[-1]
                        self.streaming = (
                            last.get("more_body", False) or last["type"] == "http.response.start"
                        )
                if not done:
                    with lock:
                        self.sent_n += len(msgs)
                        self.sent_b += nbytes
                        if self.parked:
                            self.parked = False
                            self.tq.put(None)
            if done:
                return
            if self.rx is None and not self.gone and (want_rx or self.streaming):
                self.rx_signal = make_signal(self.ref)
                self.rx = spawn(self.ref, self._receive_loop)

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
                            self.parked = False
                            self.tq.put(None)
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


# -------------------------------------------------------------------------- greenlets


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
        receive: ASGIReceive,
        send: ASGISend,
        extensions: Mapping[str, Any],
        body_done: bool,
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
        self.unread = False

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
