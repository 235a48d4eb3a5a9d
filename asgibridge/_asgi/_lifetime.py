"""``AsgiToWsgi``'s lifespan policy: judging startup, and the shutdown sequence (rules A1, A12).

Theory of operation
-------------------
:class:`~._lifespan.LifespanRunner` only reports what the app did, as an
:class:`~._lifespan.Outcome`. This module decides what that means for the
bridge, which keeps only the result (ready, or failed with a
:class:`~asgibridge.errors.LifespanError`):

* :func:`run_startup` runs startup on the bridge's loop and judges it
  (:func:`judge_startup`). With ``lifespan="auto"`` only
  ``lifespan.startup.failed`` is fatal (A12): an app that raises, returns,
  ignores the scope type or never answers is taken as one without lifespan,
  told so on the log, and served without it; its lifespan task is cancelled
  and it gets no ``lifespan.shutdown``. With ``lifespan="on"`` each of those
  is fatal. A fatal outcome is logged once, with its traceback.
* :func:`shutdown` runs on the loop at close: it waits for the requests
  still running (and their background work) up to the bound, cancels the
  rest, then sends ``lifespan.shutdown`` (or, after a failed startup, only
  cancels the lifespan task) and logs a failed or late answer.

All of it logs on the ``asgibridge.asgi`` logger, like the rest of the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

from .._core import BackgroundLoop
from ..errors import LifespanError
from ._lifespan import AUTO_ENGAGE_WAIT, LifespanRunner, Outcome

__all__ = ["judge_startup", "run_startup", "shutdown"]

logger = logging.getLogger("asgibridge.asgi")


def run_startup(
    loop: BackgroundLoop, runner: LifespanRunner, lifespan: str, timeout: float | None
) -> tuple[bool, LifespanError | None]:
    """Run lifespan startup on ``loop`` and judge it.

    Returns ``(uses_lifespan, failure)``. ``uses_lifespan`` is False for an
    app served without lifespan (A12): its lifespan task has been cancelled.
    ``failure`` is the error a fatal outcome raises; on success the app's
    state is ``runner.state``.
    """
    engage_wait = AUTO_ENGAGE_WAIT if lifespan == "auto" else None
    outcome: Outcome = loop.call(runner.startup, timeout, engage_wait)
    failure = judge_startup(outcome, lifespan, timeout)
    if failure is None and outcome.kind != "complete":
        # No lifespan (A12): stop whatever the app is doing on that scope,
        # and send it no lifespan.shutdown later.
        loop.call(runner.cancel)
        return False, None
    return True, failure


def judge_startup(
    outcome: Outcome, lifespan: str, startup_timeout: float | None
) -> LifespanError | None:
    """``None`` when requests may go on (with or without lifespan); else the error to raise."""
    kind = outcome.kind
    if kind == "complete":
        logger.debug("ASGI lifespan startup complete (pid %d)", os.getpid())
        return None
    if lifespan == "auto" and kind != "failed":
        # A12: anything but an explicit lifespan.startup.failed means the
        # app does not do lifespan; requests go on without it.
        _tell_no_lifespan(outcome, startup_timeout)
        return None
    text = _fatal_text(outcome, startup_timeout)
    logger.error(
        "%s. Every request will be answered with 500 Internal Server Error until "
        "the process is restarted.",
        text,
        exc_info=outcome.exc,
    )
    error = LifespanError(text)
    error.__cause__ = outcome.exc
    return error


def _tell_no_lifespan(outcome: Outcome, startup_timeout: float | None) -> None:
    """Log why ``lifespan="auto"`` goes on without lifespan."""
    kind = outcome.kind
    advice = "Pass lifespan='off' to skip this check, or lifespan='on' to make it fatal."
    if kind == "raised" and outcome.received:
        # It took lifespan.startup and then raised: perhaps a raw
        # lifespan app whose startup broke. Say so, with the traceback.
        logger.warning(
            "the ASGI app raised %r on the lifespan scope without answering "
            "lifespan.startup.failed; taking it as an app that does not support "
            "lifespan (lifespan='auto') and serving requests without lifespan. %s",
            outcome.exc,
            advice,
            exc_info=outcome.exc,
        )
    elif kind == "raised":
        logger.info(
            "the ASGI app does not support the lifespan protocol (it raised %r on the "
            "lifespan scope); continuing without lifespan events. %s",
            outcome.exc,
            advice,
        )
        logger.debug("lifespan scope raised", exc_info=outcome.exc)
    elif kind == "timeout":
        logger.warning(
            "the ASGI app took lifespan.startup but did not answer within "
            "startup_timeout=%ss; continuing without lifespan events (lifespan='auto'). "
            "%s",
            startup_timeout,
            advice,
        )
    elif kind == "unsupported":
        logger.info(
            "the ASGI app does not support the lifespan protocol (%s); continuing "
            "without lifespan events. %s",
            outcome.message,
            advice,
        )
    else:
        logger.info(
            "the ASGI app returned from the lifespan scope without answering "
            "lifespan.startup; continuing without lifespan events"
        )


def _fatal_text(outcome: Outcome, startup_timeout: float | None) -> str:
    """What a fatal startup outcome says: the message of the ``LifespanError``."""
    kind = outcome.kind
    if kind == "failed":
        text = "ASGI lifespan startup failed"
        message = outcome.message.strip()
        if message and (outcome.exc is None or not message.startswith("Traceback")):
            text += f": {message}"
        return text
    if kind == "raised":
        return f"ASGI lifespan startup raised {outcome.exc!r}"
    if kind == "returned":
        return (
            "the ASGI app returned from the lifespan scope without answering "
            "lifespan.startup (lifespan='on' requires it)"
        )
    if kind == "unsupported":
        return (
            f"the ASGI app does not support lifespan ({outcome.message}), and "
            "lifespan='on' requires it; use lifespan='auto' or 'off' for such an app"
        )
    return f"ASGI lifespan startup did not finish within startup_timeout={startup_timeout}s"


async def shutdown(
    tasks: Iterable[asyncio.Task[Any]],
    runner: LifespanRunner | None,
    bound: float | None,
    started: bool,
) -> None:
    """On the loop: wait for ``tasks`` (cancel them after ``bound``), then end the lifespan.

    ``started``: startup succeeded, so the app gets ``lifespan.shutdown``;
    otherwise its lifespan task (if any) is only cancelled.
    """
    running = [t for t in tasks if not t.done()]
    if running:
        _, still = await asyncio.wait(running, timeout=bound)
        if still:
            logger.warning(
                "%d request task(s) still running after shutdown_timeout=%ss; cancelling them",
                len(still),
                bound,
            )
            for t in still:
                t.cancel()
            await asyncio.wait(still, timeout=1.0)
    if runner is None:
        return
    if not started:  # startup failed: no lifespan.shutdown for an app that never started
        await runner.cancel()
        return
    outcome = await runner.shutdown(bound)
    if outcome is None or outcome.kind == "complete":
        logger.debug("ASGI lifespan shutdown complete (pid %d)", os.getpid())
        return
    if outcome.kind == "failed":
        logger.error(
            "ASGI lifespan shutdown failed: %s",
            outcome.message.strip() or "(no message)",
            exc_info=outcome.exc,
        )
    elif outcome.kind == "raised":
        logger.error("ASGI lifespan shutdown raised %r", outcome.exc, exc_info=outcome.exc)
    elif outcome.kind == "timeout":
        logger.error(
            "ASGI lifespan shutdown did not finish within shutdown_timeout=%ss; cancelled it",
            bound,
        )
