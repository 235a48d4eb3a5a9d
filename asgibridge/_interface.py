"""What kind of application is this? Coroutine-function checks and WSGI / ASGI 2 / ASGI 3 detection.

Theory of operation
-------------------
The public adapters (``AsgiToWsgi``, ``Dispatcher``, ``asgibridge serve``) and
the sync utilities all ask the same questions of a user's callable; the
answers live here, once, on one reading of the callable:

* **async by construction**: a class whose instances are awaitable, an
  ``async def`` function, or an object (not a function or method) whose
  ``__call__`` is a coroutine function. Such an app is ASGI 3.
* otherwise **its required positional parameters**, read from
  :func:`inspect.signature` (a class: its constructor): a count, or "it
  takes ``*args``", or "no signature to read".

Two questions are asked of that reading, with two policies:

* :func:`is_asgi2` is **lenient** (``AsgiToWsgi`` is only ever given ASGI
  apps): any class without ``__await__`` is ASGI 2, and a callable is ASGI 2
  only when it requires exactly one positional argument; when the signature
  does not say (``*args``, none readable) it is ASGI 3, the current form.
  :func:`single_callable` wraps an ASGI 2 app for ``AsgiToWsgi``.
* :func:`detect_interface` is **strict** (``Dispatcher`` and ``asgibridge
  serve`` are given either kind): 2 positional arguments is WSGI, 1 ASGI 2,
  3 ASGI 3; anything else, or a signature that does not say, raises
  ``TypeError`` naming the ``interface=`` override. :func:`as_asgi3` adapts
  what it detects.

A class that sets ``_asgibridge_interface = "asgi3"`` (``Dispatcher``; this
module cannot import it) is ASGI 3 without reading anything.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

from ._types import ASGIApp, Receive, Scope, Send

__all__ = [
    "Interface",
    "as_asgi3",
    "check_interface",
    "detect_interface",
    "is_asgi2",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "single_callable",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: What :func:`detect_interface` answers.
Interface = Literal["wsgi", "asgi3", "asgi2"]

_INTERFACES = ("wsgi", "asgi3", "asgi2")
_OVERRIDE_HINT = "pass interface='wsgi', 'asgi3' or 'asgi2' (asgibridge serve: --interface)"

if sys.version_info >= (3, 12):
    iscoroutinefunction = inspect.iscoroutinefunction
    markcoroutinefunction: Callable[[_F], _F] = inspect.markcoroutinefunction
else:  # pragma: no cover - Python 3.10 / 3.11

    def iscoroutinefunction(func: object) -> bool:
        """``inspect.iscoroutinefunction`` that also honours :func:`markcoroutinefunction`."""
        return inspect.iscoroutinefunction(func) or (
            getattr(func, "_is_coroutine", None) is asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
        )

    def markcoroutinefunction(func: _F) -> _F:
        """Mark ``func`` so :func:`iscoroutinefunction` reports True (a shim for 3.12's)."""
        func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
        return func


# ------------------------------------------------------------------ the one reading


def _async_callable(app: Any) -> bool:
    """An ``async def`` function, or an object whose ``__call__`` is a coroutine function.

    Functions and bound methods are judged by themselves only: their own
    ``__call__`` is a method wrapper, never a coroutine function.
    """
    if iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - the bound method, for its signature
    return not inspect.isfunction(app) and not inspect.ismethod(app) and iscoroutinefunction(call)


def _positional(app: Any) -> int | str | None:
    """How many positional arguments ``app(...)`` requires (a class: its constructor).

    ``None`` when it has no inspectable signature; the parameter's name (a
    ``str``) when it takes ``*args``, so that the count does not say.
    """
    try:
        sig = inspect.signature(app)
    except (TypeError, ValueError):
        return None
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return p.name
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            positional += 1
    return positional


# ------------------------------------------------------------------ lenient: AsgiToWsgi


def is_asgi2(app: Any) -> bool:
    """True for an ASGI 2 ("double-callable") application: ``app(scope)(receive, send)``.

    A class is one (its instances are made from the scope and then awaited
    with ``receive, send``), unless its instances are themselves awaitable.
    A coroutine function, or an object whose ``__call__`` is one, is ASGI 3.
    Any other callable is ASGI 2 only when its signature says it takes exactly
    one required positional argument; when in doubt (no signature, ``*args``)
    it is taken as ASGI 3, the current form.
    """
    if inspect.isclass(app):
        return not hasattr(app, "__await__")
    if _async_callable(app):
        return False
    return _positional(app) == 1


def single_callable(app: Any) -> ASGIApp:
    """``app`` as an ASGI 3 callable; an ASGI 2 app is wrapped (defect 9)."""
    if not is_asgi2(app):
        return cast(ASGIApp, app)

    async def asgi2_app(scope: Any, receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    asgi2_app.__qualname__ = f"asgi2({getattr(app, '__qualname__', app)!s})"
    return asgi2_app


# ------------------------------------------------------------------ strict: Dispatcher, serve


def detect_interface(app: object) -> Interface:
    """Tell whether ``app`` is a WSGI, an ASGI 3 or an ASGI 2 application.

    * ``async def app(scope, receive, send)``, or an object whose
      ``__call__`` is a coroutine function (Starlette, FastAPI, Quart,
      Django's ``ASGIHandler``, :class:`~asgibridge.Dispatcher`): ``"asgi3"``.
    * A class whose constructor takes one positional argument (the scope),
      or a plain callable taking one: ``"asgi2"`` (the double-callable form).
      A class whose constructor takes two (``environ, start_response``) is a
      PEP 3333 application class: ``"wsgi"``.
    * A plain callable taking two positional arguments (``environ,
      start_response``: Flask, Django's ``WSGIHandler``, Pyramid, Bottle):
      ``"wsgi"``; with three (``scope, receive, send``): ``"asgi3"``.

    :raises TypeError: ``app`` is not callable, or its signature does not
        say (``*args``, no signature); the message says how to override.
    """
    if getattr(type(app), "_asgibridge_interface", None) == "asgi3":
        return "asgi3"
    if not callable(app):
        raise TypeError(
            f"{app!r} is neither a WSGI nor an ASGI application: it is not callable. "
            "Point at the application object itself (for example 'module:app')."
        )
    if inspect.isclass(app):
        if hasattr(app, "__await__"):
            return "asgi3"
        # PEP 3333 allows a class as the app: its instances are the response iterables.
        positional = _positional(app)
        if positional is None:
            raise TypeError(_no_signature(app))
        # object.__init__(*args) counts as one: the ASGI 2 reading.
        return "wsgi" if positional == 2 else "asgi2"
    if _async_callable(app):
        return "asgi3"
    positional = _positional(app)
    if positional is None:
        raise TypeError(_no_signature(app))
    if isinstance(positional, str):
        raise TypeError(
            f"cannot tell whether {app!r} is a WSGI or an ASGI application: it takes "
            f"*{positional}; {_OVERRIDE_HINT}"
        )
    if positional == 2:
        return "wsgi"
    if positional == 1:
        return "asgi2"
    if positional == 3:
        return "asgi3"
    raise TypeError(
        f"{app!r} is neither a WSGI nor an ASGI application: it takes {positional} "
        "required positional arguments, where a WSGI app takes 2 (environ, start_response), "
        "an ASGI 3 app 3 (scope, receive, send) and an ASGI 2 app 1 (scope). Point at the "
        f"application object, or {_OVERRIDE_HINT}."
    )


def _no_signature(app: Any) -> str:
    return (
        f"cannot tell whether {app!r} is a WSGI or an ASGI application: it has no "
        f"inspectable signature; {_OVERRIDE_HINT}"
    )


def check_interface(interface: object) -> Interface:
    """``interface`` if it names a kind :func:`detect_interface` answers, else ``ValueError``."""
    if interface not in _INTERFACES:
        raise ValueError(f"interface must be one of {_INTERFACES} or None, got {interface!r}")
    return cast(Interface, interface)


class _Asgi2To3:
    """Present an ASGI 2 (double-callable) app as an ASGI 3 app."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[[Scope], Any]) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"<ASGI 2 app {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def as_asgi3(app: Any, interface: Interface | None = None) -> ASGIApp:
    """``app`` as an ASGI 3 application: ASGI 2 apps are adapted, ASGI 3 apps returned as is.

    :raises TypeError: ``app`` is a WSGI app (wrap it in
        :class:`~asgibridge.WsgiToAsgi`), or its kind cannot be detected.
    """
    kind = detect_interface(app) if interface is None else check_interface(interface)
    if kind == "asgi2":
        return _Asgi2To3(app)
    if kind == "wsgi":
        raise TypeError(f"{app!r} is a WSGI application; wrap it in WsgiToAsgi to serve it as ASGI")
    return cast(ASGIApp, app)
