"""Lifespan for a server that sends none (daphne), driven by ``asgibridge serve``.

Theory of operation
-------------------
daphne never sends ``lifespan`` events, so a FastAPI app's startup code does
not run and ``request.state`` is empty. :class:`DaphneLifespan` wraps the app
and plays the server's part of the lifespan protocol on daphne's own asyncio
loop (the one twisted's asyncio reactor runs): startup is scheduled with
``reactor.callWhenRunning``, so it runs before the first request is served
(requests that race it wait for it), and shutdown runs from a ``before
shutdown`` reactor trigger. The policy is ``AsgiToWsgi``'s (rules A1, A12):
``auto`` carries on without lifespan when the app raises before asking for
startup or returns without answering; ``on`` makes that fatal; a
``lifespan.startup.failed`` answer is fatal in both, stops the reactor, and
makes ``asgibridge serve`` exit with status 3.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._types import Message, Receive, Scope, Send

__all__ = ["DaphneLifespan"]

logger = logging.getLogger("asgibridge.serve")

SHUTDOWN_TIMEOUT = 30.0


class DaphneLifespan:
    """An ASGI app that runs ``app``'s lifespan itself, for daphne."""

    def __init__(self, app: Any, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        #: The reason startup failed, or None.
        self.failed: str | None = None
        self._supported = False
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._startup_task: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: asyncio.Queue[Any] | None = None

    # ------------------------------------------------------------------ the server side

    def schedule_startup(self, reactor: Any) -> None:
        """Called by the reactor when it starts running: start the lifespan task."""
        loop: asyncio.AbstractEventLoop = getattr(reactor, "_asyncioEventloop", None) or (
            asyncio.get_event_loop()
        )
        self._ready = loop.create_future()
        self._startup_task = loop.create_task(self._startup(reactor))

    async def _startup(self, reactor: Any) -> None:
        assert self._ready is not None
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Any] = asyncio.Queue()
        self._to_app, self._from_app = to_app, from_app
        received = False

        async def receive() -> Message:
            nonlocal received
            received = True
            return await to_app.get()

        async def send(message: Message) -> None:
            await from_app.put(message)

        async def run() -> None:
            scope = {
                "type": "lifespan",
                "asgi": {"version": "3.0", "spec_version": "2.0"},
                "state": self.state,
            }
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                await from_app.put(exc)
            else:
                await from_app.put(None)

        self._task = asyncio.get_running_loop().create_task(run())
        await to_app.put({"type": "lifespan.startup"})
        answer = await from_app.get()
        try:
            self._judge(answer, received)
        finally:
            self._ready.set_result(None)
        if self.failed is not None:
            logger.error("ASGI lifespan startup failed: %s; stopping daphne", self.failed)
            reactor.stop()

    def _judge(self, answer: Any, received: bool) -> None:
        if isinstance(answer, dict) and answer.get("type") == "lifespan.startup.complete":
            self._supported = True
            return
        if isinstance(answer, dict) and answer.get("type") == "lifespan.startup.failed":
            self.failed = str(answer.get("message") or "lifespan.startup.failed")
            return
        unsupported = answer is None or (isinstance(answer, Exception) and not received)
        if unsupported and self.mode == "auto":
            logger.info("the ASGI app does not support lifespan; continuing without it")
            return
        if isinstance(answer, Exception):
            logger.error("ASGI lifespan startup raised", exc_info=answer)
            self.failed = f"it raised {answer!r}"
        elif answer is None:
            self.failed = "the app returned without answering lifespan.startup (--lifespan on)"
        else:
            self.failed = f"the app answered {answer.get('type')!r} to lifespan.startup"

    def shutdown_deferred(self) -> Any:
        """A twisted Deferred for the ``before shutdown`` trigger (None: nothing to do)."""
        if not self._supported or self._task is None or self._task.done():
            return None
        from twisted.internet.defer import Deferred

        return Deferred.fromFuture(asyncio.ensure_future(self._shutdown()))

    async def _shutdown(self) -> None:
        assert self._to_app is not None and self._from_app is not None
        await self._to_app.put({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(self._from_app.get(), SHUTDOWN_TIMEOUT)
        except asyncio.TimeoutError:
            logger.error("ASGI lifespan shutdown did not finish within %ss", SHUTDOWN_TIMEOUT)
            return
        if isinstance(answer, dict) and answer.get("type") == "lifespan.shutdown.complete":
            return
        logger.error("ASGI lifespan shutdown failed: %r", answer)

    # ------------------------------------------------------------------ requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection once startup is done, with the lifespan ``state`` in its scope."""
        ready = self._ready
        if ready is not None and not ready.done():
            await asyncio.shield(ready)
        if self.failed is not None:
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            return
        if self._supported:
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)
