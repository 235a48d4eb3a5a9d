"""The ASGI lifespan protocol, driven from the server side, for ``AsgiToWsgi`` (rule A1).

Theory of operation
-------------------
One :class:`LifespanRunner` per process and bridge. Its coroutines run on the
bridge's background loop, the same loop that runs every request, so objects
made at startup (connection pools, clients bound to a loop) work in requests.

The application's lifespan coroutine runs in a task of its own that lives from
startup to shutdown: after answering ``lifespan.startup`` it sits in
``receive()`` until :meth:`LifespanRunner.shutdown` hands it
``lifespan.shutdown``. The task gets an empty ``contextvars.Context``, so it
inherits nothing from whichever thread happened to trigger startup (in
particular no thread-sensitive home that might be gone by shutdown time).

The runner only reports what happened, as an :class:`Outcome`; the policy
(``"auto"`` treats an app that raises, returns or never answers as one that
does not support lifespan, ``"on"`` treats it as fatal) lives in
:mod:`._lifetime`.

Telling an app that ignores ``scope["type"]`` from a lifespan app (rule A12)
------------------------------------------------------------------------------
Many ASGI callables never look at the scope type: a bare Starlette
``StreamingResponse`` used as the app, or middleware that calls ``receive()``
first. On the lifespan scope they do things no lifespan app does, and each
is recognised at once, without waiting for a timeout:

* sending a message that is not ``lifespan.*`` (``http.response.start``);
* calling ``receive()`` a second time before answering ``lifespan.startup``
  (a lifespan app must answer before it can be sent anything else).

Either ends startup with the ``"unsupported"`` outcome. An app that never
calls ``receive()`` nor ``send()`` within ``engage_wait`` seconds (``"auto"``
mode passes :data:`AUTO_ENGAGE_WAIT`) is also ``"unsupported"``: every
lifespan implementation asks for ``lifespan.startup`` first thing.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any

from .._types import ASGIApp, Message
from ..errors import AppProtocolError

__all__ = ["AUTO_ENGAGE_WAIT", "Outcome", "LifespanRunner"]


# How long to wait, after the app reports ``*.failed``, for its task to end
# with the exception that caused it (Starlette re-raises right after sending).
_FAILED_GRACE = 1.0

#: ``lifespan="auto"``: seconds an app has to call ``receive()`` or ``send()``
#: on the lifespan scope before it is taken not to support lifespan (A12).
AUTO_ENGAGE_WAIT = 1.0


class Outcome:
    """What one lifespan phase (startup or shutdown) ended with.

    ``kind`` is one of:

    * ``"complete"``: the app sent ``lifespan.<phase>.complete``;
    * ``"failed"``: the app sent ``lifespan.<phase>.failed`` (``message`` is
      its text, ``exc`` the exception its task ended with, if any);
    * ``"raised"``: the app raised ``exc`` without answering (``received``
      says whether it had asked for ``lifespan.startup`` first, which tells
      an app that failed at startup from one that does not know lifespan);
    * ``"returned"``: the app returned without answering;
    * ``"unsupported"``: the app showed that it does not speak lifespan
      (``message`` says how; see the module docstring);
    * ``"timeout"``: no answer within the time allowed.
    """

    __slots__ = ("exc", "kind", "message", "received")

    def __init__(
        self,
        kind: str,
        message: str = "",
        exc: BaseException | None = None,
        received: bool = False,
    ) -> None:
        self.kind = kind
        self.message = message
        self.exc = exc
        self.received = received

    def __repr__(self) -> str:
        return f"Outcome({self.kind!r}, {self.message!r}, {self.exc!r})"


class LifespanRunner:
    """Runs one application's lifespan task on the current (background) loop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: The lifespan ``state`` dict; each request scope gets a shallow copy.
        self.state: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._phase = "startup"
        self._received = 0
        self._startup: asyncio.Future[Outcome] | None = None
        self._shutdown: asyncio.Future[Outcome] | None = None
        self._shutdown_requested: asyncio.Event | None = None
        self._pending_failure: Outcome | None = None
        self._engaged: asyncio.Event | None = None

    # ------------------------------------------------------------ the app's side

    def _engage(self) -> None:
        engaged = self._engaged
        if engaged is not None:
            engaged.set()

    def _unsupported(self, how: str) -> bool:
        """During startup: settle it as ``"unsupported"``; False if it was already answered."""
        fut = self._startup
        if self._phase != "startup" or fut is None or fut.done():
            return False
        self._engage()
        fut.set_result(Outcome("unsupported", how))
        return True

    async def _receive(self) -> Message:
        self._received += 1
        self._engage()
        if self._received == 1:
            return {"type": "lifespan.startup"}
        if self._unsupported(
            "it called receive() again before answering lifespan.startup, as an app that "
            "ignores scope['type'] does"
        ):
            # Park until the bridge cancels this task.
            await asyncio.get_running_loop().create_future()
        event = self._shutdown_requested
        assert event is not None
        await event.wait()
        if self._received == 2:
            return {"type": "lifespan.shutdown"}
        # Nothing follows shutdown; an app that keeps asking waits until cancelled.
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        phase = self._phase
        self._engage()
        if not (isinstance(kind, str) and kind.startswith("lifespan.")):
            self._unsupported(f"it sent {kind!r} on the lifespan scope")
            raise AppProtocolError(
                f"{kind!r} sent on the lifespan scope; this app does not support lifespan"
            )
        fut = self._startup if phase == "startup" else self._shutdown
        if kind == f"lifespan.{phase}.complete":
            outcome = Outcome("complete")
        elif kind == f"lifespan.{phase}.failed":
            outcome = Outcome("failed", str(message.get("message") or ""))
        else:
            raise AppProtocolError(
                f"unexpected lifespan message {kind!r} during {phase}: expected "
                f"'lifespan.{phase}.complete' or 'lifespan.{phase}.failed'"
            )
        if fut is None or fut.done():
            raise AppProtocolError(f"lifespan {phase} was answered twice ({kind!r})")
        if outcome.kind == "failed":
            # Keep the answer until the task ends, so the outcome can carry
            # the exception (and its traceback) that caused the failure.
            self._pending_failure = outcome
            asyncio.get_running_loop().call_later(_FAILED_GRACE, self._settle_failure, fut)
            return
        fut.set_result(outcome)

    def _settle_failure(self, fut: asyncio.Future[Outcome]) -> None:
        outcome = self._pending_failure
        if outcome is not None and not fut.done():
            self._pending_failure = None
            fut.set_result(outcome)

    async def _main(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            self._settle_all(Outcome("timeout"))
            raise
        except BaseException as exc:
            self._settle_all(Outcome("raised", exc=exc, received=self._received > 0))
            if not isinstance(exc, Exception):
                raise
        else:
            self._settle_all(Outcome("returned"))

    def _settle_all(self, outcome: Outcome) -> None:
        self._engage()
        pending = self._pending_failure
        if pending is not None:
            self._pending_failure = None
            pending.exc = outcome.exc
            outcome = pending
        for fut in (self._startup, self._shutdown):
            if fut is not None and not fut.done():
                fut.set_result(outcome)

    # -------------------------------------------------------------- server side

    async def startup(self, timeout: float | None, engage_wait: float | None = None) -> Outcome:
        """Start the lifespan task and wait for its answer to ``lifespan.startup``.

        With ``engage_wait``, an app that neither calls ``receive()`` nor
        ``send()`` within that many seconds is ``"unsupported"`` (its task is
        cancelled).
        """
        loop = asyncio.get_running_loop()
        self._startup = loop.create_future()
        self._shutdown_requested = asyncio.Event()
        engaged = self._engaged = asyncio.Event()
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        if sys.version_info >= (3, 11):
            task = loop.create_task(self._main(scope), context=contextvars.Context())
        else:  # pragma: no cover - 3.10 copies the context it is created in
            task = contextvars.Context().run(loop.create_task, self._main(scope))
        self._task = task
        if engage_wait is not None and (timeout is None or engage_wait < timeout):
            try:
                await asyncio.wait_for(engaged.wait(), engage_wait)
            except asyncio.TimeoutError:
                await self.cancel()
                return Outcome(
                    "unsupported",
                    f"it neither called receive() nor send() within {engage_wait}s",
                )
        return await self._wait(self._startup, timeout)

    async def shutdown(self, timeout: float | None) -> Outcome | None:
        """Send ``lifespan.shutdown`` and wait for the answer; ``None`` if not running."""
        task = self._task
        if task is None or task.done():
            return None
        self._phase = "shutdown"
        self._shutdown = asyncio.get_running_loop().create_future()
        assert self._shutdown_requested is not None
        self._shutdown_requested.set()
        outcome = await self._wait(self._shutdown, timeout)
        if outcome.kind == "complete":
            # The app normally returns right after answering; give it that chance.
            await asyncio.wait((task,), timeout=_FAILED_GRACE)
        if not task.done():
            task.cancel()
            await asyncio.wait((task,), timeout=_FAILED_GRACE)
        return outcome

    async def cancel(self) -> None:
        """Cancel the lifespan task, if it is still running (after a failed startup)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,), timeout=_FAILED_GRACE)

    async def _wait(self, fut: asyncio.Future[Outcome], timeout: float | None) -> Outcome:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            task = self._task
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait((task,), timeout=_FAILED_GRACE)
            return Outcome("timeout")

    @property
    def running(self) -> bool:
        """True while the application's lifespan task is alive."""
        return self._task is not None and not self._task.done()
