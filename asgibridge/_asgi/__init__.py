"""The ASGI wing: an ASGI application served over WSGI (``AsgiToWsgi``'s internals).

The per-request exchange between a WSGI worker thread and the bridge's
event loop, the response body iterables, and the lifespan runner.
"""

from __future__ import annotations

from ._exchange import (
    END,
    Exchange,
    Failure,
    FileBody,
    PathSend,
    ResponseBody,
    cut_body,
    declared_length,
)
from ._lifespan import AUTO_ENGAGE_WAIT, LifespanRunner, Outcome

__all__ = [
    "AUTO_ENGAGE_WAIT",
    "END",
    "Exchange",
    "Failure",
    "FileBody",
    "LifespanRunner",
    "Outcome",
    "PathSend",
    "ResponseBody",
    "cut_body",
    "declared_length",
]
