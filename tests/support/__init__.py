"""Helpers shared by the tests and the benchmarks: one copy of each, imported from here.

* ``scopes``: ASGI scopes and WSGI environs to start a request from (``make_scope``,
  ``uvicorn_scope``, ``make_environ``, ``cgi_environ``).
* ``drivers``: in-process drivers that play the server for one request: ``asgi_call`` runs
  an ASGI app with a scope and a request body and collects what it sends; ``wsgi_call``
  runs a WSGI app with an environ and collects status, headers and body.
* ``asgi_servers`` / ``wsgi_servers``: real servers on 127.0.0.1 (uvicorn, hypercorn,
  waitress, wsgiref, gunicorn), in a thread or a subprocess, every wait bounded in time.
* ``logs``: counting log records of every logger (the servers' included) during a test;
  ``wait_for(predicate)``, a polling wait bounded in time.
* ``net``: ``free_port()``.

The shared pytest fixtures (``anyio_backend``, ``executor``, ``backend``) are in
``tests/conftest.py``. Import as ``from tests.support.scopes import make_scope``: the
repository root is on ``sys.path`` under pytest (``pythonpath`` in pyproject.toml), under
``python -m benchmarks.x``, and in the gunicorn workers ``wsgi_servers.gunicorn_server``
starts; so test files may move into folders below ``tests/`` without changing these imports.
``scopes`` and ``drivers`` import nothing from asgibridge, so a benchmark can use them
against any tree (``--baseline``). ``ROOT`` is the repository's folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT"]

ROOT = Path(__file__).resolve().parents[2]
