"""The ASGI wing: an ASGI application served over WSGI (``AsgiToWsgi``'s internals).

``asgi.py`` (the public adapter) keeps the options and the bridge's lifetime
and imports everything else from here:

* :mod:`._exchange`: :class:`Exchange`, one request between its WSGI thread
  and its ASGI task; the loop side (the task, ``receive()``, ``send()``) and
  the response :class:`Phase` with its transition table;
* :mod:`._request`: the request body (read on the WSGI thread, on demand);
* :mod:`._wsgi_thread`: the WSGI thread's wait, which also serves the app's
  body reads and thread-sensitive jobs, and backpressure;
* :mod:`._response`: what the WSGI side gets (items, the response iterables,
  ``Content-Length`` cuts, error reporting);
* :mod:`._bridge`: the settings the wing reads from its ``AsgiToWsgi``;
* :mod:`._launch`: starting request tasks on the loop, many per wake-up;
* :mod:`._answers`: the bridge's own answers (plain-text errors, pathsend files);
* :mod:`._lifespan`: the lifespan protocol, driven from the server side;
* :mod:`._lifetime`: the bridge's lifespan policy (judging startup, shutdown).
"""

from __future__ import annotations

from ._answers import ERROR_TEXT, LOOP_STOPPED, ON_LOOP_THREAD, bad_start, plain, send_file
from ._bridge import Bridge, check_count, check_timeout
from ._exchange import TRANSITIONS, Exchange, Phase
from ._launch import Launcher, eventfd_write, unwatch, watch
from ._lifespan import AUTO_ENGAGE_WAIT, LifespanRunner, Outcome
from ._lifetime import judge_startup, run_startup, shutdown
from ._response import END, Failure, FileBody, PathSend, ResponseBody, cut_body, declared_length

__all__ = [
    "AUTO_ENGAGE_WAIT",
    "Bridge",
    "END",
    "ERROR_TEXT",
    "LOOP_STOPPED",
    "ON_LOOP_THREAD",
    "TRANSITIONS",
    "Exchange",
    "Failure",
    "FileBody",
    "Launcher",
    "LifespanRunner",
    "Outcome",
    "PathSend",
    "Phase",
    "ResponseBody",
    "bad_start",
    "check_count",
    "check_timeout",
    "cut_body",
    "declared_length",
    "eventfd_write",
    "judge_startup",
    "plain",
    "run_startup",
    "send_file",
    "shutdown",
    "unwatch",
    "watch",
]
