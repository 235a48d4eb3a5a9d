"""Lifespan fan-out for ``Dispatcher``: one lifespan conversation, driven into every child.

Theory of operation
-------------------
The server holds one lifespan conversation with the dispatcher; the
dispatcher holds one with each child, through a :class:`ChildLifespan`:
a task running the child's app on the lifespan scope (a copy of the outer
one, sharing its ``state`` dict) and two small memory streams, one each way.

* **Startup** goes to the children one at a time in mount order, then the
  default; each must answer before the next starts. A child that raises
  before asking for ``lifespan.startup`` (it never called ``receive``), or
  returns without answering, does not support lifespan and is skipped
  (logged at INFO: rule A12). A child that answers
  ``lifespan.startup.failed``, raises after asking, or answers something
  else, makes the whole startup fail: the children already started are shut
  down in reverse order and ``lifespan.startup.failed`` names the child.
* **Shutdown** goes to the started children in reverse order; their
  failures are collected into one ``lifespan.shutdown.failed``.

All child tasks live in one task group, cancelled once the outcome is
sent; every stream is closed on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc

from .._types import Message, Receive, Scope, Send
from ..errors import LifespanError
from ._routing import Child

__all__ = ["ChildLifespan", "fan_out_lifespan"]

logger = logging.getLogger("asgibridge.dispatch")


async def fan_out_lifespan(
    scope: Scope, receive: Receive, send: Send, children: Sequence[Child]
) -> None:
    """Run the lifespan protocol with the server, fanned out to ``children`` (in that order)."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        raise LifespanError(
            f"expected lifespan.startup as the first lifespan message, got {message['type']!r}"
        )
    runners: list[ChildLifespan] = []
    try:
        await _converse(scope, receive, send, children, runners)
    finally:
        for runner in runners:
            runner.close()


async def _converse(
    scope: Scope,
    receive: Receive,
    send: Send,
    children: Sequence[Child],
    runners: list[ChildLifespan],
) -> None:
    async with anyio.create_task_group() as tg:
        started: list[ChildLifespan] = []
        failure: str | None = None
        for child in children:
            runner = ChildLifespan(child, scope)
            runners.append(runner)
            answer = await runner.start(tg)
            if answer == "complete":
                started.append(runner)
            elif answer == "unsupported":
                continue
            else:
                failure = f"{runner.name}: {answer}"
                break
        if failure is not None:
            logger.error("lifespan startup failed in %s", failure)
            errors = await _shutdown_all(started)
            for text in errors:
                logger.error("while undoing startup, shutdown failed in %s", text)
            tg.cancel_scope.cancel()
            await send({"type": "lifespan.startup.failed", "message": failure})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if message["type"] != "lifespan.shutdown":  # pragma: no cover - server bug
            raise LifespanError(f"expected lifespan.shutdown, got {message['type']!r}")
        errors = await _shutdown_all(started)
        tg.cancel_scope.cancel()
    if errors:
        await send({"type": "lifespan.shutdown.failed", "message": "; ".join(errors)})
    else:
        await send({"type": "lifespan.shutdown.complete"})


class ChildLifespan:
    """Drives one child's lifespan coroutine from the dispatcher."""

    def __init__(self, child: Child, scope: Scope) -> None:
        self.child = child
        self.name = f"the app mounted at {child.prefix!r}" if child.prefix else "the default app"
        self.scope = dict(scope)
        self.to_child, self.child_in = anyio.create_memory_object_stream[Message](2)
        self.child_out, self.from_child = anyio.create_memory_object_stream[Any](2)
        self.received = False

    def close(self) -> None:
        for stream in (self.to_child, self.child_in, self.child_out, self.from_child):
            stream.close()

    async def _receive(self) -> Message:
        self.received = True
        return await self.child_in.receive()

    async def _send(self, message: Message) -> None:
        await self.child_out.send(message)

    async def _run(self) -> None:
        try:
            await self.child.app(self.scope, self._receive, self._send)
        except Exception as exc:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.child_out.send(exc)
        else:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.child_out.send(None)

    async def start(self, tg: anyio.abc.TaskGroup) -> str:
        """Start the child and ask it to start up: ``"complete"``, ``"unsupported"`` or why not."""
        tg.start_soon(self._run)
        await self.to_child.send({"type": "lifespan.startup"})
        answer = await self.from_child.receive()
        if isinstance(answer, Exception):
            if not self.received:
                logger.info("%s does not support lifespan (it raised %r)", self.name, answer)
                return "unsupported"
            logger.error("%s raised in lifespan startup", self.name, exc_info=answer)
            return f"raised {answer!r}"
        if answer is None:
            logger.info("%s returned from lifespan without answering; skipped", self.name)
            return "unsupported"
        kind = answer.get("type")
        if kind == "lifespan.startup.complete":
            return "complete"
        if kind == "lifespan.startup.failed":
            return str(answer.get("message") or "lifespan.startup.failed")
        return f"answered {kind!r} to lifespan.startup"

    async def shutdown(self) -> str | None:
        """Ask the child to shut down: ``None`` when it did, else what went wrong."""
        await self.to_child.send({"type": "lifespan.shutdown"})
        answer = await self.from_child.receive()
        if isinstance(answer, Exception):
            logger.error("%s raised in lifespan shutdown", self.name, exc_info=answer)
            return f"{self.name}: raised {answer!r}"
        if answer is None or answer.get("type") == "lifespan.shutdown.complete":
            return None
        return f"{self.name}: {answer.get('message') or answer.get('type')}"


async def _shutdown_all(started: list[ChildLifespan]) -> list[str]:
    errors: list[str] = []
    for runner in reversed(started):
        error = await runner.shutdown()
        if error is not None:
            errors.append(error)
    return errors
