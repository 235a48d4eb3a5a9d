"""Swap ``asgiref.sync`` for asgibridge's names at interpreter start (suite runners only).

The suite runners in ``scripts/`` put this directory on ``PYTHONPATH`` and set
``ASGIBRIDGE_SUITE_SHIM=1`` for the runs that judge asgibridge. Python imports
``sitecustomize`` during start-up, before any test code, in the runner process and
in every worker process it spawns, so Django and asgiref's tests import
``asgiref.sync`` and get a module that holds asgibridge's objects. Nothing in
site-packages is edited.

A name that asgiref.sync defines but asgibridge.sync lacks is left out: importing it
raises ``ImportError`` as it would from any module, and the name is appended to the
file named by ``ASGIBRIDGE_SUITE_MISSING`` so that the runner can report it. With
``ASGIBRIDGE_SUITE_FILL=1`` (a diagnostic mode, never the judge) such names are
taken from stock asgiref.sync instead, so that the rest of a test file can run.
"""

from __future__ import annotations

import os
import sys
import types

# The public names of asgiref 3.13's asgiref.sync.
ASGIREF_SYNC_NAMES = (
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "async_to_sync",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "sync_to_async",
)


def _install() -> None:
    import asgiref

    import asgibridge.sync as bridge

    fill = os.environ.get("ASGIBRIDGE_SUITE_FILL") == "1"
    if fill:
        import asgiref.sync as stock

    shim = types.ModuleType("asgiref.sync", "asgiref.sync replaced by asgibridge.sync's names")
    shim.__file__ = bridge.__file__
    provided = []
    for name in ASGIREF_SYNC_NAMES:
        if hasattr(bridge, name):
            setattr(shim, name, getattr(bridge, name))
            provided.append(name)
        elif fill:
            setattr(shim, name, getattr(stock, name))
            provided.append(name)
    shim.__all__ = provided  # type: ignore[attr-defined]
    missing_log = os.environ.get("ASGIBRIDGE_SUITE_MISSING")
    if fill and missing_log:
        with open(missing_log, "a", encoding="utf-8") as f:
            for name in ASGIREF_SYNC_NAMES:
                if not hasattr(bridge, name):
                    f.write(f"{name} (filled from stock asgiref)\n")

    def __getattr__(name: str) -> object:
        if missing_log and not name.startswith("__"):
            with open(missing_log, "a", encoding="utf-8") as f:
                f.write(name + "\n")
        raise AttributeError(f"asgibridge.sync has no {name!r} (asgiref.sync shim for the suites)")

    shim.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["asgiref.sync"] = shim
    asgiref.sync = shim  # type: ignore[attr-defined]


def _install_handler() -> None:
    """Make Django's ASGIHandler asgibridge.django's (``ASGIBRIDGE_SUITE_HANDLER=1``).

    Django's own ``get_asgi_application()`` and every test that names
    ``django.core.handlers.asgi.ASGIHandler`` then build asgibridge's subclass, which
    runs a sync view and its sync middleware in fewer thread hand-offs.
    """
    import django.core.asgi
    import django.core.handlers.asgi

    from asgibridge.django import ASGIHandler

    django.core.handlers.asgi.ASGIHandler = ASGIHandler  # type: ignore[misc]
    django.core.asgi.ASGIHandler = ASGIHandler  # type: ignore[attr-defined]


if os.environ.get("ASGIBRIDGE_SUITE_SHIM") == "1":
    _install()
    if os.environ.get("ASGIBRIDGE_SUITE_HANDLER") == "1":
        _install_handler()
