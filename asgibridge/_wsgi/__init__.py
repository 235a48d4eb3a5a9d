"""The WSGI wing: a PEP 3333 application served over ASGI (``WsgiToAsgi``'s internals).

The PEP 3333 side (``start_response``, ``wsgi.input``, ``wsgi.errors``, file
wrappers, the iterable) and the two request paths: thread mode and greenlet
mode.

The PEP 3333 side (what runs in the worker; it knows nothing about loops):

* ``_transport``: ``Transport``, the seam the request paths implement (push, pull);
* ``_response``: :func:`run_wsgi`, ``start_response`` and its phases, ``write()``, file sends;
* ``_input``: ``wsgi.input`` (``Input``, ``EMPTY_INPUT``);
* ``_streams``: ``wsgi.errors`` (``ErrorStream``) and ``wsgi.file_wrapper`` (``FileWrapper``).

Request paths (``WsgiToAsgi`` routes each scope type to one of these):

* ``_http``: what every path shares: the ``Bridge`` settings and ``Executor`` shape,
  the body-less request rule, the small replies (4xx, 408, websocket refusal);
* ``_thread``: thread mode, top-down (request task, admission, worker, report);
  ``_thread_exchange`` its per-request object, ``_thread_body`` the request body side,
  ``_thread_phase`` its phases and their steps; ``_admission`` how many run at once;
* ``_greenlet``: greenlet mode (request task and its transport);
* ``_lifespan``: startup/shutdown hooks and stopping the workers.
"""

from __future__ import annotations

from ._admission import Admission, PoolAdmission
from ._greenlet import BODY_END_WAIT, GREENLET, GreenletExchange
from ._http import Bridge, Executor, Hook, body_message, refuse_websocket
from ._input import EMPTY_INPUT, Input
from ._lifespan import serve_lifespan
from ._response import run_wsgi
from ._streams import ErrorStream, FileWrapper
from ._thread import THREAD
from ._thread_exchange import ThreadExchange
from ._thread_phase import TRANSITIONS, Phase
from ._transport import Transport

__all__ = [
    "BODY_END_WAIT",
    "EMPTY_INPUT",
    "GREENLET",
    "THREAD",
    "TRANSITIONS",
    "Admission",
    "Bridge",
    "ErrorStream",
    "Executor",
    "FileWrapper",
    "GreenletExchange",
    "Hook",
    "Input",
    "Phase",
    "PoolAdmission",
    "ThreadExchange",
    "Transport",
    "body_message",
    "refuse_websocket",
    "run_wsgi",
    "serve_lifespan",
]
