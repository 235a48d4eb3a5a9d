"""The pure codecs: ASGI scope <-> WSGI environ, and response starts both ways.

Nothing here touches a loop, a thread or a socket: every function takes
values and returns values (memo tables aside), so each is tested on its own.

Modules, one concern each:

* ``_environ``: scope -> environ for ``WsgiToAsgi`` (``EnvironBuilder``,
  ``build_environ``), with its per-builder templates and header-key memo.
* ``_scope``: environ -> scope for ``AsgiToWsgi`` (``environ_to_scope``),
  with its header-plan memo.
* ``_start``: response starts both ways (``encode_response_start`` and its
  memo ``encode_response_start_cached``; ``status_line``, ``wsgi_headers``).
* ``_limits``: the bounds on request headers (``HeaderLimits``, rule C21),
  their defaults and their error messages.
* ``_paths``: paths in PEP 3333's "bytes as latin-1" space, both ways.
* ``_fields``: header name and value rules and latin-1 helpers shared by all.

Other folders import only the names below.
"""

from __future__ import annotations

from ._environ import EnvironBuilder, build_environ
from ._limits import DEFAULT_HEADER_LIMITS, HeaderLimits
from ._scope import environ_to_scope
from ._start import encode_response_start, encode_response_start_cached, status_line, wsgi_headers

__all__ = [
    "DEFAULT_HEADER_LIMITS",
    "EnvironBuilder",
    "HeaderLimits",
    "build_environ",
    "encode_response_start",
    "encode_response_start_cached",
    "environ_to_scope",
    "status_line",
    "wsgi_headers",
]
