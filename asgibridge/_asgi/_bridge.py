"""What the ASGI wing reads from the ``AsgiToWsgi`` that owns a request.

The wing never imports the public adapter (layers only import downward).
Each :class:`~._exchange.Exchange` keeps a reference to its bridge and reads
these settings from it, set once per bridge (``_launcher`` once per process);
:class:`Bridge` names them so that the type checker holds both sides to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from .._types import ASGIApp
from ._launch import Launcher

__all__ = ["Bridge", "check_count", "check_timeout"]


class Bridge(Protocol):
    """The settings of an ``AsgiToWsgi`` bridge that its requests read."""

    #: The ASGI 3 callable requests run (an ASGI 2 app already wrapped).
    _app3: ASGIApp
    #: ``send_buffer``: body messages that may wait before ``send()`` waits.
    _send_buffer: int
    #: ``read_chunk_size``: bytes per ``wsgi.input`` read.
    _read_chunk_size: int
    #: ``background_timeout``: seconds background work may run after the response.
    _background_timeout: float | None
    #: This process's task launcher (it holds the running request tasks).
    _launcher: Launcher
    #: This process's asyncio loop (``None`` before start).
    _aloop: asyncio.AbstractEventLoop
    #: Schedules a callback on the loop from any thread (``loop.call_soon_threadsafe``).
    _post: Callable[..., Any]


def check_timeout(name: str, value: float | None) -> float | None:
    """A bridge option in seconds: a positive number, or ``None`` for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def check_count(name: str, value: int, minimum: int) -> int:
    """A bridge option that counts something: an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
