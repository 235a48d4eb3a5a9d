"""The scenario apps, one module per framework, and the bridge each cell puts around one.

:func:`build` returns the application a server is given: the framework's app,
wrapped in the bridge under test, behind a prefix mount at ``/mnt`` (the
"mount under a prefix" scenario). The mount follows the specs, as
Starlette's ``Mount`` and werkzeug's ``DispatcherMiddleware`` do: on the ASGI
side it sets ``root_path`` and keeps the full ``path``; on the WSGI side it
moves the prefix from ``PATH_INFO`` to ``SCRIPT_NAME``. It is done here and
not with server options because those mean different things per server
(uvicorn's ``--root-path`` prepends to ``path``, hypercorn's does not).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["ASGI_FRAMEWORKS", "MOUNT", "WSGI_FRAMEWORKS", "build"]

MOUNT = "/mnt"

# framework name -> (module, attribute or factory)
WSGI_FRAMEWORKS: dict[str, tuple[str, str]] = {
    "flask": ("wsgi_flask", "app"),
    "django": ("django_project", "wsgi_app()"),
    "pyramid": ("wsgi_pyramid", "app"),
    "bottle": ("wsgi_bottle", "app"),
    "falcon": ("wsgi_falcon", "app"),
    "plain": ("wsgi_plain", "app"),
}
ASGI_FRAMEWORKS: dict[str, tuple[str, str]] = {
    "starlette": ("asgi_starlette", "app"),
    "fastapi": ("asgi_fastapi", "app"),
    "quart": ("asgi_quart", "app"),
    "litestar": ("asgi_litestar", "app"),
    "django-asgi": ("django_project", "asgi_app()"),
}


def _load(spec: tuple[str, str]) -> Any:
    module = importlib.import_module(f"{__name__}.{spec[0]}")
    name = spec[1]
    if name.endswith("()"):
        return getattr(module, name[:-2])()
    return getattr(module, name)


def mount_asgi(app: Any) -> Callable[..., Any]:
    """Serve ``app`` at ``/`` and, with ``root_path`` set, under ``/mnt``."""

    async def mounted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == MOUNT or path.startswith(MOUNT + "/")):
            scope = dict(scope)
            scope["root_path"] = scope.get("root_path", "") + MOUNT
        await app(scope, receive, send)

    return mounted


def mount_wsgi(app: Any) -> Callable[..., Any]:
    """Serve ``app`` at ``/`` and, with ``SCRIPT_NAME`` extended, under ``/mnt``."""

    def mounted(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == MOUNT or path.startswith(MOUNT + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + MOUNT
            environ["PATH_INFO"] = path[len(MOUNT) :]
        return app(environ, start_response)

    return mounted


def build(framework: str, bridge: str) -> Any:
    """The app a server serves for one cell.

    :param framework: a key of :data:`WSGI_FRAMEWORKS` or :data:`ASGI_FRAMEWORKS`.
    :param bridge: ``asgibridge-thread``, ``asgibridge-greenlet`` or ``a2wsgi``
        for a WSGI framework; ``asgibridge`` or ``a2wsgi`` for an ASGI one.
    """
    from .common import mark_started

    if framework in WSGI_FRAMEWORKS:
        wsgi_app = _load(WSGI_FRAMEWORKS[framework])
        if bridge.startswith("asgibridge-"):
            from asgibridge import WsgiToAsgi

            executor = bridge.split("-", 1)[1]
            return mount_asgi(
                WsgiToAsgi(wsgi_app, executor=executor, on_startup=mark_started)  # type: ignore[arg-type]
            )
        if bridge == "a2wsgi":
            from a2wsgi import WSGIMiddleware

            return mount_asgi(WSGIMiddleware(wsgi_app))
    elif framework in ASGI_FRAMEWORKS:
        asgi_app = _load(ASGI_FRAMEWORKS[framework])
        if bridge == "asgibridge":
            from asgibridge import AsgiToWsgi

            return mount_wsgi(AsgiToWsgi(asgi_app))
        if bridge == "a2wsgi":
            from a2wsgi import ASGIMiddleware

            return mount_wsgi(ASGIMiddleware(asgi_app))
    else:
        raise ValueError(f"unknown framework {framework!r}")
    raise ValueError(f"unknown bridge {bridge!r} for framework {framework!r}")
