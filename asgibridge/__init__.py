"""asgibridge: WSGI and ASGI in both directions, on one fast scheduler core.

Public names only; everything else lives in private modules.
"""

from __future__ import annotations

from ._core import BackgroundLoop
from .asgi import AsgiToWsgi
from .dispatch import Dispatcher
from .errors import (
    AppProtocolError,
    BridgeError,
    ClientDisconnected,
    DeadlockError,
    LifespanError,
    ProtocolError,
    RequestRejected,
    SchedulerError,
    ServerProtocolError,
)
from .loop import run_shared, shared_loop
from .sync import (
    AsyncSingleThreadContext,
    AsyncToSync,
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from .wsgi import WsgiToAsgi

__version__ = "0.1.0"

__all__ = [
    "AppProtocolError",
    "AsgiToWsgi",
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "BackgroundLoop",
    "BridgeError",
    "ClientDisconnected",
    "DeadlockError",
    "Dispatcher",
    "LifespanError",
    "ProtocolError",
    "RequestRejected",
    "SchedulerError",
    "ServerProtocolError",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "WsgiToAsgi",
    "__version__",
    "async_to_sync",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "run_shared",
    "shared_loop",
    "sync_to_async",
]
