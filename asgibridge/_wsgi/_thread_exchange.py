"""Thread mode's per-request object: the state a request task and its worker share.

Theory of operation
-------------------
A :class:`ThreadExchange` is made by the thread request path
(:mod:`._thread`) once the start of the body is read, and owns its request
from then on: the worker runs the app and posts its outcome through it
(:meth:`~ThreadExchange.run`), ``run_wsgi`` talks to it as its transport
(``push``, ``push_wait``, ``pull``), and the request task sends what it
queues: it waits for the first wake-up itself, runs the rounds of a response
that streams in :meth:`~ThreadExchange.dispatch`, and sends what is left
once the outcome is in (:meth:`~ThreadExchange.settled_messages`). Only its
own methods write its fields. Fields written by both sides are guarded by ``lock``; ``tq`` is where
the worker parks, and any loop-side event that could unblock it puts a token
there (the worker re-checks its condition after every wake).

Two steps need no lock. The final push only sets ``final``, which the worker
alone writes and the request task reads only once the outcome is in. And the
outcome is the worker's last act on its exchange (posted through the loop,
which orders it after every write before it), so once ``outcome`` is set the
request task reads ``pending`` and ``final`` without the lock.

Its phase (``phase``, one of :class:`~._thread_phase.Phase`) is written
only in this module (steps: :data:`~._thread_phase.TRANSITIONS`).

Flags that are not the phase stay flags: ``wake_posted`` (one wake-up
outstanding), ``parked`` (the worker sleeps on ``tq``), ``want_rx`` (the
worker asked for the receiver), ``rx_paused`` (the receiver waits for body
window), ``timed_out`` (why the last ``pull`` failed: chooses a 408), and
``body_done`` / ``unread`` (the request body stream's own state, orthogonal
to the phase: a request may stream its response while its body still
arrives).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import copy_context
from typing import Any

from .._core import Background, Job, LoopRef, Signal, make_signal, spawn
from .._types import Environ, Message, Receive, Send, WSGIApp
from ..errors import ClientDisconnected
from ._admission import Admission
from ._response import run_wsgi
from ._thread_body import ThreadBody
from ._thread_phase import ACTIVE, GONE, SETTLED, STREAMING

__all__ = ["ThreadExchange"]

logger = logging.getLogger("asgibridge.wsgi")

_NO_KWARGS: dict[str, Any] = {}  # a job's keyword arguments: read, never written
_Lock = threading.Lock


class ThreadExchange(ThreadBody):
    """One thread-mode request, shared by its request task and its worker thread.

    The request body's side (the worker's ``pull`` and the loop's read-ahead
    receiver) is inherited from :class:`~._thread_body.ThreadBody`.
    """

    __slots__ = (
        "adm",
        "app",
        "body_timeout",
        "body_window",
        "environ",
        "extensions",
        "final",
        "job",
        "lock",
        "outcome",
        "pending",
        "pending_b",
        "phase",
        "post",
        "queued_b",
        "queued_n",
        "reason",
        "receive",
        "ref",
        "rx",
        "rx_signal",
        "send",
        "send_error",
        "sent_b",
        "sent_n",
        "signal",
        "window_b",
        "window_n",
    )

    def __init__(
        self,
        ref: LoopRef,
        receive: Receive,
        send: Send,
        extensions: Mapping[str, Any],
        settings: Any,
        environ: Environ,
        body: deque[bytes],
        body_b: int,
        body_done: bool,
        unread: bool,
        adm: Admission[ThreadExchange],
    ) -> None:
        """``settings``: the bridge (:class:`._http.Bridge`); ``body``: the prefetched chunks.

        ``unread``: the request has no body and the server's (empty)
        ``http.request`` has not been received; a disconnect watcher takes it.
        The worker runs the request's job: :meth:`run`, which settles here.
        """
        self.ref = ref
        self.post = ref.post
        self.receive = receive
        self.send = send
        self.extensions = extensions
        self.app: WSGIApp = settings.app
        self.window_n: int = settings.send_window
        self.window_b: int = settings.send_window_bytes
        self.body_window: int = settings.body_window
        self.body_timeout: float | None = settings.body_timeout
        self.environ = environ
        self.body = body
        self.body_b = body_b
        self.body_done = body_done
        self.unread = unread
        self.phase = ACTIVE
        self.lock = _Lock()
        self.tq = None  # made on the worker's first park (_park): most never park
        self.signal = ref.signal()
        self.rx_signal: Signal | None = None
        self.rx: Background | None = None
        self.outcome: tuple[bool, Any] | None = None
        self.pending: list[Message] = []
        self.final: list[Message] | None = None
        self.pending_b = 0
        self.queued_n = self.sent_n = 0
        self.queued_b = self.sent_b = 0
        self.wake_posted = False
        self.parked = False
        self.want_rx = False
        self.rx_paused = False
        self.timed_out = False
        self.reason = ""
        self.send_error: BaseException | None = None
        self.adm: Admission[ThreadExchange] | None = adm
        job = Job(_run, (self,), _NO_KWARGS, copy_context())
        self.job: Any = job
        job.ref = ref
        job.settle = _settle  # only if the job fails before run() posts the outcome

    @property
    def gone(self) -> bool:
        """True once the phase is ``GONE`` (the transport interface's name for it)."""
        return self.phase is GONE

    # ------------------------------------------------------------ worker side

    def run(self) -> None:
        """The request's job (in the worker): run the app, then post its outcome.

        The outcome (``ok``, exception or None) is posted as soon as the app is
        done, before the worker looks for more work: measured here, reporting
        after the admission bookkeeping instead doubles the latency of a lone
        request (~50 -> ~100 us). The request task then sends the final
        messages. The job is then marked ``reported``: the core posts nothing
        more, and the pool asks the admission for the next queued request.
        """
        job = self.job  # the request task drops it once the outcome is in
        ok = True
        value: BaseException | None = None
        if self.phase is not GONE:  # else its request was cancelled while it waited
            try:
                run_wsgi(self.app, self.environ, self)  # type: ignore[arg-type]  # gone: read-only
            except BaseException as exc:
                ok = False
                value = exc
            finally:
                self.environ = None  # type: ignore[assignment]
        try:
            self.post(self.on_settle, None, ok, value)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass
        finally:
            value = None  # the error's traceback holds this frame: no cycle through it
        job.reported = True

    def _post(self, callback: Callable[[], None]) -> None:
        try:
            self.post(callback)
        except RuntimeError:  # the loop is closed: nobody will ever send this
            with self.lock:
                self._mark_gone("the event loop serving this request has closed")
            raise ClientDisconnected(self.reason) from None

    def push(self, messages: list[Message], final: bool, nbytes: int) -> None:
        """Queue response messages; see :class:`~._transport.Transport`."""
        if final:
            # Kept for the request task, which sends it once the worker's outcome
            # is posted. No lock: only the worker writes ``final``, and the request
            # task reads it only after that post. One read of ``phase`` is atomic.
            if self.phase is GONE:
                with self.lock:
                    raise ClientDisconnected(self.reason)
            self.final = messages
            return
        lock = self.lock
        lock.acquire()  # not ``with``: half the instructions, once per streamed chunk
        try:
            if self.phase is GONE:
                raise ClientDisconnected(self.reason)
            self.pending.extend(messages)
            self.pending_b += nbytes
            self.queued_n += len(messages)
            self.queued_b += nbytes
            post = not self.wake_posted
            self.wake_posted = True
        finally:
            lock.release()
        if post:
            self._post(self.signal.set)
        while True:
            lock.acquire()
            try:
                if self.phase is GONE:
                    raise ClientDisconnected(self.reason)
                if (
                    self.queued_n - self.sent_n <= self.window_n
                    and self.queued_b - self.sent_b <= self.window_b
                ):
                    return
                tq = self._park()
            finally:
                lock.release()
            tq.get()

    def push_wait(self, messages: list[Message]) -> None:
        """Send ``messages`` and return once the request task has sent them."""
        lock = self.lock
        with lock:
            if self.phase is GONE:
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
                if self.phase is GONE:
                    raise ClientDisconnected(self.reason)
                tq = self._park()
            tq.get()

    # -------------------------------------------------------------- loop side

    def _mark_gone(self, reason: str) -> None:
        """Call with ``lock`` held: every later worker operation raises."""
        if self.phase is not GONE:
            self.phase = GONE
            self.reason = reason
        if self.parked:
            self._unpark()

    def abandon(self, reason: str) -> None:
        """The request task is going away: release the worker."""
        with self.lock:
            self._mark_gone(reason)
        rx = self.rx
        if rx is not None:
            rx.cancel()

    def cancel(self) -> None:
        """The request task is going away before its end: release the worker, stop the receiver."""
        if self.outcome is None:
            cancel = self.job.cancel_nested
            if cancel is not None:
                cancel()
            self.abandon("the request was cancelled")
        elif self.rx is not None:
            self.rx.cancel()

    def on_settle(self, job: Any, ok: bool, value: Any) -> None:
        """Job completion callback (runs on the loop).

        :meth:`run` posts it with the request's outcome. The core posts it
        only if the worker's job failed before that (it is then the outcome).
        """
        if self.outcome is None:
            self.outcome = (ok, value)
            if self.phase is not GONE:
                self.phase = SETTLED
            self.signal.set()

    def send_failed(self, exc: Exception) -> None:
        """The server's ``send()`` raised: keep the error, and every later worker step raises."""
        self.send_error = exc
        with self.lock:
            self._mark_gone(f"sending the response failed: {exc!r}")

    async def dispatch(self) -> None:
        """Send what the worker queues, round after round, until its outcome is in.

        The request task waits for the first wake-up itself, and calls this
        only when it was not the outcome (a response that streams, or a read
        past the prefetched body); then it sends the rest
        (:meth:`settled_messages`) and stops the receiver (:meth:`stop_receiver`).
        """
        lock = self.lock
        send = self.send
        signal = self.signal
        while True:
            with lock:
                msgs = self.pending
                nbytes = self.pending_b
                if msgs:
                    self.pending = []
                    self.pending_b = 0
                self.wake_posted = False
                want_rx = self.want_rx
            if msgs:
                streaming = False
                if self.phase is not GONE:
                    try:
                        for msg in msgs:
                            await send(msg)
                    except Exception as exc:
                        self.send_failed(exc)
                    else:
                        last = msgs[-1]
                        streaming = (
                            last.get("more_body", False) or last["type"] == "http.response.start"
                        )
                with lock:
                    self.sent_n += len(msgs)
                    self.sent_b += nbytes
                    if streaming and self.phase is ACTIVE:
                        self.phase = STREAMING
                    if self.parked:
                        self._unpark()
            phase = self.phase
            if self.rx is None and phase is not GONE and (want_rx or phase is STREAMING):
                self.rx_signal = make_signal(self.ref)
                self.rx = spawn(self.ref, self._receive_loop)
            await signal.wait()
            if self.outcome is not None:
                return

    def settled_messages(self) -> list[Message]:
        """Once the outcome is in: the messages left to send, in order (none once ``GONE``).

        The worker posted its outcome as its last act on this exchange:
        nothing it writes changes any more, so no lock.
        """
        # Break the exchange <-> job cycle so that refcounting frees both now,
        # not a later GC pass.
        self.job = None
        if self.phase is GONE:
            return []
        msgs = self.pending
        final = self.final
        if final is not None:
            return msgs + final if msgs else final
        return msgs

    async def stop_receiver(self) -> None:
        """Cancel the receiver task, once the response is sent, and wait for it to end."""
        rx = self.rx
        if rx is not None:
            rx.cancel()
            await rx.join()


#: The request's job function (a global: one lookup fewer per request than the attribute).
_run = ThreadExchange.run


def _settle(job: Job, ok: bool, value: Any) -> None:
    """A request job's ``settle``: the core's post when the job failed before it reported."""
    job.args[0].on_settle(job, ok, value)
