"""The pure codecs: ASGI scope <-> WSGI environ, and response starts both ways.

Nothing here touches a loop, a thread or a socket: every function takes
values and returns values (memo tables aside), so each is tested on its own.
"""

from __future__ import annotations

from ._environ import (
    EnvironBuilder,
    build_environ,
    encode_response_start,
    encode_response_start_cached,
    environ_to_scope,
    status_line,
    wsgi_headers,
)

__all__ = [
    "EnvironBuilder",
    "build_environ",
    "encode_response_start",
    "encode_response_start_cached",
    "environ_to_scope",
    "status_line",
    "wsgi_headers",
]
