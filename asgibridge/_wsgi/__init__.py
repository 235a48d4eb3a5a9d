"""The WSGI wing: a PEP 3333 application served over ASGI (``WsgiToAsgi``'s internals).

The PEP 3333 side (``start_response``, ``wsgi.input``, ``wsgi.errors``, file
wrappers, the iterable) and the two request paths: thread mode and greenlet
mode.
"""

from __future__ import annotations

from ._exchange import Admission, GreenletExchange, ThreadExchange, body_message
from ._pep3333 import EMPTY_INPUT, ErrorStream, FileWrapper, Input, run_wsgi

__all__ = [
    "EMPTY_INPUT",
    "Admission",
    "ErrorStream",
    "FileWrapper",
    "GreenletExchange",
    "Input",
    "ThreadExchange",
    "body_message",
    "run_wsgi",
]
