"""One typed vocabulary for the whole package: ASGI and WSGI callables, messages, scopes.

Every module imports these names from here instead of defining its own copy.
They are aliases for type checkers only; nothing is checked at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any

__all__ = [
    "ASGIApp",
    "Environ",
    "ExcInfo",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "StartResponse",
    "WSGIApp",
]

#: An ASGI event, in either direction (``{"type": "http.request", ...}``).
Message = dict[str, Any]
#: An ASGI connection scope.
Scope = MutableMapping[str, Any]
#: ASGI ``receive``: awaits the next event from the server.
Receive = Callable[[], Awaitable[Message]]
#: ASGI ``send``: hands one event to the server.
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application, ``await app(scope, receive, send)``.
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]
#: A PEP 3333 environ.
Environ = dict[str, Any]
#: ``sys.exc_info()``-shaped error information, as PEP 3333 passes it.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
#: PEP 3333 ``start_response(status, headers, exc_info=None) -> write``.
StartResponse = Callable[..., Callable[[bytes], object]]
#: A PEP 3333 application, ``app(environ, start_response) -> iterable of bytes``.
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]
