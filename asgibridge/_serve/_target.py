"""``asgibridge serve``, steps 1 to 3: import the target, or build Django's handler; wrap it.

Theory of operation
-------------------
:func:`load_target` turns ``MODULE:ATTR`` (or a Django settings module)
into the user's application object; :func:`build_app` wraps that object as
the chosen kind of server needs (``"asgi"`` or ``"wsgi"``), after
:func:`~asgibridge.dispatch.detect_interface` (or ``--interface``) says what
it is. Both run in the ``asgibridge serve`` process, and again in a worker
process that imports ``asgibridge.cli:asgi`` afresh: :func:`build_from_env`
repeats them from the ``ASGIBRIDGE_SERVE`` environment variable that the
command wrote.

Every failure the user can fix is a :class:`ServeError` whose message names
the fix; an error in the user's own module keeps its traceback in the
message.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from typing import Any, Literal, cast

from .._interface import Interface, as_asgi3, detect_interface
from .._types import Receive, Scope, Send

__all__ = ["ENV", "NoLifespan", "ServeError", "attr", "build_app", "build_from_env", "load_target"]

#: The environment variable that carries the serve options to worker processes.
ENV = "ASGIBRIDGE_SERVE"


class ServeError(Exception):
    """A problem with what ``asgibridge serve`` was asked to do; the message names the fix."""

    __module__ = "asgibridge.cli"  # its public home


def attr(module: str, name: str) -> Any:
    """``module.name``, importing ``module``."""
    return getattr(importlib.import_module(module), name)


def _traceback_of(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            raise ServeError(
                f"cannot import module {name!r}: no module named {missing!r} on the path. "
                f"Check the spelling of {name!r}, and run from the directory that contains it "
                "(or pass --app-dir DIR)."
            ) from None
        raise ServeError(
            f"importing {name!r} failed: it imports {missing!r}, which is not installed. "
            f"Install it (pip install {missing.split('.')[0]}) in this environment "
            f"({sys.executable})."
        ) from exc
    except Exception as exc:
        raise ServeError(
            f"{_traceback_of(exc)}\nimporting {name!r} raised {exc!r} (traceback above): fix "
            "the error in that module."
        ) from None


# ------------------------------------------------------------------ Django


def _looks_like_django_settings(module: Any) -> bool:
    return hasattr(module, "INSTALLED_APPS") and hasattr(module, "ROOT_URLCONF")


def _django_app(settings: str, server_kind: str, interface: Interface | None) -> Any:
    _import_module(settings)  # a clear error for a wrong settings path
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    if importlib.util.find_spec("django") is None:
        raise ServeError("Django is not installed: pip install django") from None
    # Django's own WSGI stack by default, on either kind of server: sync views run as they
    # do under any WSGI server, and on an ASGI server WsgiToAsgi wraps it.
    if interface in ("asgi3", "asgi2"):
        module, name = "django.core.asgi", "get_asgi_application"
    else:
        module, name = "django.core.wsgi", "get_wsgi_application"
    try:
        return attr(module, name)()
    except Exception as exc:  # ImproperlyConfigured, an app's import error, ...
        raise ServeError(
            f"{_traceback_of(exc)}\nDjango's {name}() failed for settings {settings!r}: {exc} "
            "(traceback above). Fix the settings or the app it names."
        ) from None


# ------------------------------------------------------------------ loading


def load_target(
    target: str | None,
    *,
    django_settings: str | None = None,
    factory: bool = False,
    interface: Interface | None = None,
    server_kind: str = "asgi",
) -> Any:
    """Import and return the application named by ``target`` (``"module:attr"``).

    ``"module"`` alone takes ``module.application``, then ``module.app``; a
    Django settings module (it has ``INSTALLED_APPS`` and ``ROOT_URLCONF``)
    gives Django's handler. ``django_settings`` sets
    ``DJANGO_SETTINGS_MODULE`` first; with no ``target`` it gives Django's
    WSGI handler (``get_asgi_application()`` with ``interface="asgi3"``).
    ``factory`` calls the attribute with no arguments to get the app.

    :raises ServeError: the module cannot be imported, the attribute is
        missing, or the factory fails; the message names the fix.
    """
    if django_settings:
        if not target:
            return _django_app(django_settings, server_kind, interface)
        os.environ["DJANGO_SETTINGS_MODULE"] = django_settings
    if not target:
        raise ServeError(
            "nothing to serve: give the app as MODULE:ATTR (for example "
            "'asgibridge serve examples.flask_app:app'), or --django-settings mysite.settings"
        )
    module_name, _, name = target.partition(":")
    if not module_name or (":" in target and not name):
        raise ServeError(f"{target!r} is not MODULE:ATTR, e.g. 'examples.flask_app:app'")
    module = _import_module(module_name)
    if not name:
        if _looks_like_django_settings(module) and not hasattr(module, "application"):
            return _django_app(module_name, server_kind, interface)
        name = _default_attr(module, module_name)
    value = _walk(module, module_name, name, target)
    if factory:
        try:
            value = value()
        except Exception as exc:
            raise ServeError(
                f"{_traceback_of(exc)}\nthe app factory {target!r} raised {exc!r} (traceback above)"
            ) from None
    return value


def _default_attr(module: Any, module_name: str) -> str:
    for candidate in ("application", "app"):
        if hasattr(module, candidate):
            return candidate
    raise ServeError(
        f"module {module_name!r} has no 'application' or 'app' attribute; name the app "
        f"as {module_name}:ATTR" + _suggest(module)
    )


def _walk(module: Any, module_name: str, name: str, target: str) -> Any:
    """``module.a.b`` for ``name`` ``"a.b"``; a missing part names what exists instead."""
    value: Any = module
    walked = module_name
    for part in name.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ServeError(
                f"{walked!r} has no attribute {part!r}: check the name after ':' in {target!r}"
                + _suggest(module)
            ) from None
        walked += ("." if walked != module_name else ":") + part
    return value


def _app_like_names(module: Any) -> list[str]:
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, type(sys)):
            continue
        try:
            kind = detect_interface(value)
        except Exception:  # not an app, or a proxy object (flask.request) that refuses access
            continue
        if kind != "asgi2" or name in ("app", "application"):
            names.append(name)
    return names


def _suggest(module: Any) -> str:
    names = _app_like_names(module)
    if not names:
        return ""
    return f". App-like objects in {module.__name__!r}: " + ", ".join(sorted(names))


# ------------------------------------------------------------------ wrapping


def build_app(
    app: Any,
    server_kind: str,
    *,
    interface: Interface | None = None,
    executor: str = "thread",
    lifespan: str = "auto",
) -> tuple[Any, str]:
    """Wrap ``app`` for a server of ``server_kind`` (``"asgi"`` or ``"wsgi"``).

    Returns the app to serve and a short description of what was done.

    :raises ServeError: the object is neither WSGI nor ASGI.
    """
    try:
        kind = interface or detect_interface(app)
    except TypeError as exc:
        raise ServeError(str(exc).replace("interface=", "--interface ")) from None
    if server_kind == "asgi":
        if kind == "wsgi":
            from ..wsgi import WsgiToAsgi

            bridge = WsgiToAsgi(app, executor=cast(Literal["thread", "greenlet"], executor))
            return bridge, f"WSGI app, through WsgiToAsgi ({executor})"
        label = "ASGI 2 app, adapted to ASGI 3" if kind == "asgi2" else "ASGI app"
        return as_asgi3(app, kind), label
    if kind == "wsgi":
        return app, "WSGI app"
    from ..dispatch import Dispatcher

    if isinstance(app, Dispatcher):
        return app.as_wsgi(lifespan=lifespan), "Dispatcher, WSGI children direct"
    from ..asgi import AsgiToWsgi

    mode = cast(Literal["auto", "on", "off"], lifespan)
    return AsgiToWsgi(as_asgi3(app, kind), lifespan=mode), "ASGI app, through AsgiToWsgi"


def build_from_env(name: str) -> Any:
    """Load and wrap the app again from :data:`ENV`, in a worker process the server spawned."""
    raw = os.environ.get(ENV)
    if not raw:
        raise AttributeError(
            f"asgibridge.cli.{name} exists only under 'asgibridge serve' (it is the app that "
            "command builds); serve your app with 'asgibridge serve MODULE:ATTR'"
        )
    cfg = json.loads(raw)
    if cfg["app_dir"] not in sys.path:
        sys.path.insert(0, cfg["app_dir"])
    app = load_target(
        cfg["target"],
        django_settings=cfg["django_settings"],
        factory=cfg["factory"],
        interface=cfg["interface"],
        server_kind=cfg["server_kind"],
    )
    built, _ = build_app(
        app,
        cfg["server_kind"],
        interface=cfg["interface"],
        executor=cfg["executor"],
        lifespan=cfg["lifespan"],
    )
    if cfg.get("no_lifespan"):
        built = NoLifespan(built)
    return built


class NoLifespan:
    """Answers lifespan itself, so that the app never sees it (``--lifespan off``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
