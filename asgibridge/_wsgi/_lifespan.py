"""``WsgiToAsgi``'s lifespan: startup and shutdown hooks, and stopping the workers (rule C17).

Theory of operation
-------------------
:func:`serve_lifespan` answers every lifespan message. On
``lifespan.startup`` it runs the ``on_startup`` hooks in order; the first
that fails is answered with ``lifespan.startup.failed`` (and logged), which
ends the lifespan. On
``lifespan.shutdown`` it runs every ``on_shutdown`` hook (a failure is
logged and reported, the others still run), then stops the worker threads
(``WsgiToAsgi.aclose``) before it answers. An async hook is awaited on the
loop; a sync one runs where the app runs (the executor's ``call``: a worker
thread, or a greenlet), and an awaitable it returns is awaited too.
"""

from __future__ import annotations

import inspect
import logging

from .._interface import iscoroutinefunction
from .._types import Receive, Scope, Send
from ..errors import ServerProtocolError
from ._http import Bridge, Hook

__all__ = ["serve_lifespan"]

logger = logging.getLogger("asgibridge.wsgi")


async def _run_hook(bridge: Bridge, hook: Hook) -> None:
    if iscoroutinefunction(hook) or iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004
    ):
        await hook()
        return
    result = await bridge._executor.call(bridge, hook)
    if inspect.isawaitable(result):
        await result


async def _startup(bridge: Bridge, send: Send) -> bool:
    """Run the startup hooks and answer; False if one failed (the lifespan then ends)."""
    for hook in bridge.on_startup:
        try:
            await _run_hook(bridge, hook)
        except Exception as exc:
            logger.exception("WsgiToAsgi startup hook %r failed", hook)
            await send(
                {
                    "type": "lifespan.startup.failed",
                    "message": f"startup hook {_name(hook)} raised {exc!r}",
                }
            )
            return False
    await send({"type": "lifespan.startup.complete"})
    return True


async def _shutdown(bridge: Bridge, send: Send) -> None:
    failure = ""
    for hook in bridge.on_shutdown:
        try:
            await _run_hook(bridge, hook)
        except Exception as exc:
            logger.exception("WsgiToAsgi shutdown hook %r failed", hook)
            failure = failure or f"shutdown hook {_name(hook)} raised {exc!r}"
    await bridge.aclose()
    if failure:
        await send({"type": "lifespan.shutdown.failed", "message": failure})
    else:
        await send({"type": "lifespan.shutdown.complete"})


async def serve_lifespan(bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve a ``lifespan`` scope until shutdown (or a failed startup)."""
    while True:
        msg = await receive()
        kind = msg.get("type")
        if kind == "lifespan.startup":
            if not await _startup(bridge, send):
                return
        elif kind == "lifespan.shutdown":
            await _shutdown(bridge, send)
            return
        else:
            raise ServerProtocolError(
                f"unexpected lifespan message {kind!r}; expected 'lifespan.startup' or "
                "'lifespan.shutdown'"
            )


def _name(hook: Hook) -> str:
    return str(getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or hook)
