"""``asgibridge serve`` internals: target loading, wrapping, and one runner per server.

:mod:`asgibridge.cli` holds the command line (the parser, ``main``, the
``serve`` flow) and the ``asgibridge.cli:asgi`` / ``:wsgi`` import strings;
this folder holds what the flow calls:

* :mod:`._target`: import ``MODULE:ATTR`` or build Django's handler, detect
  and wrap it for the server's kind, rebuild it in a spawned worker;
* :mod:`._runners`: the supported servers, the port check, one function per
  server that runs its own entry point;
* :mod:`._daphne`: lifespan for daphne, which sends none.

To add a server: an entry in ``SERVERS`` and a runner in ``RUNNERS``
(``_runners.py``), and the extra in ``pyproject.toml``.
"""

from __future__ import annotations

from ._daphne import DaphneLifespan
from ._runners import RUNNERS, SERVERS, claim_port, start_bridge
from ._target import ENV, NoLifespan, ServeError, attr, build_app, build_from_env, load_target

__all__ = [
    "ENV",
    "RUNNERS",
    "SERVERS",
    "DaphneLifespan",
    "NoLifespan",
    "ServeError",
    "attr",
    "build_app",
    "build_from_env",
    "claim_port",
    "load_target",
    "start_bridge",
]
