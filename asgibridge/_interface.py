"""What kind of application is this? Coroutine-function checks and ASGI 2 detection.

The public adapters (``AsgiToWsgi``, ``Dispatcher``, ``asgibridge serve``) and
the sync utilities all ask the same questions of a user's callable; the
answers live here, once.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ._types import ASGIApp

__all__ = ["is_asgi2", "iscoroutinefunction", "markcoroutinefunction", "single_callable"]

_F = TypeVar("_F", bound=Callable[..., Any])

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
    if iscoroutinefunction(app):
        return False
    call = getattr(app, "__call__", None)  # noqa: B004 - the bound method, for its signature
    if not inspect.isfunction(app) and iscoroutinefunction(call):
        return False
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return False
    required = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return False
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            required += 1
    return required == 1


def single_callable(app: Any) -> ASGIApp:
    """``app`` as an ASGI 3 callable; an ASGI 2 app is wrapped (defect 9)."""
    if not is_asgi2(app):
        return cast(ASGIApp, app)

    async def asgi2_app(scope: Any, receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    asgi2_app.__qualname__ = f"asgi2({getattr(app, '__qualname__', app)!s})"
    return asgi2_app
