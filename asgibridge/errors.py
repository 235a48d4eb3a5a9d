"""The exception tree.

Every exception asgibridge raises on its own account derives from
:class:`BridgeError` and from the nearest builtin, so existing ``except``
clauses keep working. Exceptions raised by the wrapped application pass
through unchanged; they are never wrapped in these types.
"""

from __future__ import annotations

__all__ = [
    "AppProtocolError",
    "BridgeError",
    "ClientDisconnected",
    "DeadlockError",
    "LifespanError",
    "ProtocolError",
    "RequestRejected",
    "SchedulerError",
    "ServerProtocolError",
]


class BridgeError(Exception):
    """Root of every exception asgibridge raises itself."""


class ProtocolError(BridgeError, RuntimeError):
    """A party broke PEP 3333 or the ASGI specification.

    Raised through one of its two subclasses, which say who broke the rule.
    """


class AppProtocolError(ProtocolError):
    """The wrapped application broke the protocol.

    Raised by ``start_response`` and the response machinery of
    :class:`~asgibridge.WsgiToAsgi` (for example a second ``start_response``
    without ``exc_info``, a malformed status line, a header value that cannot
    be encoded as latin-1), and by :class:`~asgibridge.AsgiToWsgi` when the
    ASGI app sends messages out of order.
    """


class ServerProtocolError(ProtocolError):
    """The calling server broke the protocol, for example an unknown scope type."""


class RequestRejected(BridgeError, ValueError):
    """The request is refused before it reaches the application.

    Raised while building the WSGI environ when a request breaks a strict
    input bound (too many headers, too many repeats of one header, an
    invalid header). The bridge answers it with :attr:`status` (400 unless
    stated otherwise) and never calls the application.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SchedulerError(BridgeError, RuntimeError):
    """The scheduler core cannot do what was asked; the message says how to fix it.

    Raised by ``async_to_sync`` when no event loop can be used, by workers
    that were closed, and by misuse of thread-sensitive contexts.
    """


class DeadlockError(SchedulerError):
    """A call would wait on itself forever.

    Raised by ``sync_to_async`` / ``async_to_sync`` when the thread a call
    needs is the very thread that is blocked waiting for that call, for
    example re-entering a thread-sensitive lane from code that lane is
    waiting on without going through ``async_to_sync``.
    """


class ClientDisconnected(BridgeError, OSError):
    """The HTTP client went away.

    Raised inside a WSGI application by ``wsgi.input`` reads when the client
    disconnects mid-upload (so the app never sees a silently truncated body),
    and by ``write()`` when the response can no longer be delivered.
    """


class LifespanError(BridgeError, RuntimeError):
    """The application's lifespan startup or shutdown failed.

    Raised by :meth:`asgibridge.AsgiToWsgi.start` when startup fails; the
    original exception is chained as ``__cause__``.
    """
