"""Django on asgibridge's scheduler: one call in ``asgi.py``.

Use::

    # mysite/asgi.py
    import os

    from asgibridge.django import get_asgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    application = get_asgi_application()

Theory of operation
-------------------
Two things are needed, and this module does both.

1. **Every ``asgiref.sync`` call in the process goes to asgibridge** (:func:`install`).
   Django's modules bind ``sync_to_async`` and friends with ``from asgiref.sync import
   ...`` when they are imported, and so do third-party apps. A subclass of Django's
   handler alone would leave those on asgiref: an async view's ``await Model.objects.aget()``
   would then run on asgiref's process-wide thread, not on the request's
   :class:`~asgibridge.sync.ThreadSensitiveContext` thread where the middleware opened the
   database connection. So :func:`install` puts a module holding asgibridge's names at
   ``sys.modules["asgiref.sync"]`` for imports still to come, and rebinds the same names
   in modules already imported. Django's modules only look these names up when they are
   called, so this is safe at any point before the first request; objects made before it
   (a handler built by Django's own ``get_asgi_application()``, a module-level
   ``@sync_to_async`` function) stay on asgiref, which is why the earlier, the better.

2. **Fewer thread hand-offs per request** (:class:`ASGIHandler`). Django's
   ``ASGIHandler`` makes one thread-sensitive ``sync_to_async`` call per sync step: the
   ``request_started`` signal, each ``MiddlewareMixin`` hook, the view and
   ``response.close()``; seven for a sync view behind two such middleware. Each is a
   thread hand-off whose floor is the host's wake-up latency. For a sync view, whose
   middleware would all run on the request's thread anyway, the subclass runs the signal,
   the request object, the middleware and the view in *one* hand-off, as Django's
   ``WSGIHandler`` runs them, and ``response.close()`` in a second, after the body is
   sent. Everything else (reading the body, sending the response, async views, async
   middleware, client disconnects) is Django's own code.

What the app observes does not change: the view and the sync middleware hooks run on
one thread, the request's ``ThreadSensitiveContext`` thread, with no running event loop;
``request_started`` fires before the request object is built and ``request_finished``
after the body is sent; async views and the async side of async-capable middleware run
on the event loop. The differences that remain are listed in ``docs/django.md``.

The middleware-chain builder and the rebinding walk live in :mod:`asgibridge._django`.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import types
from collections.abc import Awaitable, Callable
from typing import Any

try:
    import django
    from django.core import signals
    from django.core.exceptions import RequestAborted
    from django.core.handlers import asgi as _django_asgi
    from django.http import FileResponse
    from django.urls import Resolver404, get_resolver, set_script_prefix
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "asgibridge.django needs Django: install it with `pip install django` "
        f"(import failed: {exc})"
    ) from exc

from . import sync as _bridge
from ._django import Chains, rebind_imported
from ._types import Receive, Scope, Send

__all__ = ["ASGIHandler", "get_asgi_application", "install"]

#: The public names of ``asgiref.sync`` that asgibridge provides and :func:`install` swaps.
_NAMES = (
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "async_to_sync",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "sync_to_async",
)

_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Make ``asgiref.sync`` resolve to asgibridge's names, in this whole process.

    :func:`get_asgi_application` calls it for you; call it yourself only when you build
    the handler another way (a custom ASGI stack, a test runner), as early as you can.

    After it, ``from asgiref.sync import sync_to_async`` (and ``async_to_sync``,
    ``SyncToAsync``, ``AsyncToSync``, ``ThreadSensitiveContext``,
    ``iscoroutinefunction``, ``markcoroutinefunction`` and, once asgibridge has it,
    ``AsyncSingleThreadContext``) gives asgibridge's object, and modules that already
    imported one of asgiref's objects under any name are rebound to asgibridge's. Other
    attributes of ``asgiref.sync`` still come from asgiref. asgiref's own modules
    (``asgiref.wsgi``, ``asgiref.server``, ...) are left alone. Calling it again does
    nothing. Nothing is written to disk.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        asgiref = importlib.import_module("asgiref")
        real = importlib.import_module("asgiref.sync")
        shim = types.ModuleType(
            "asgiref.sync", "asgiref.sync with asgibridge.sync's names (asgibridge.django.install)"
        )
        shim.__file__ = _bridge.__file__
        swaps: dict[int, tuple[object, object]] = {}
        provided: list[str] = []
        for name in _NAMES:
            ours = getattr(_bridge, name, None)
            if ours is None:
                continue
            setattr(shim, name, ours)
            provided.append(name)
            theirs = getattr(real, name, None)
            if theirs is not None:
                swaps[id(theirs)] = (theirs, ours)

        def fallback(name: str) -> object:
            # Anything asgibridge does not provide comes from asgiref itself.
            return getattr(real, name)

        shim.__getattr__ = fallback  # type: ignore[method-assign]
        shim.__all__ = provided  # type: ignore[attr-defined]
        sys.modules["asgiref.sync"] = shim
        setattr(asgiref, "sync", shim)  # noqa: B010 - a submodule attribute
        rebind_imported(swaps)
        _installed = True


_script_prefix: Callable[[ASGIHandler, Scope], str]
if hasattr(_django_asgi, "get_script_prefix"):  # Django 5.0 and later

    def _script_prefix(handler: ASGIHandler, scope: Scope) -> str:
        return _django_asgi.get_script_prefix(scope)  # type: ignore[no-any-return]

else:  # Django 4.2: a method of the handler

    def _script_prefix(handler: ASGIHandler, scope: Scope) -> str:
        return handler.get_script_prefix(scope)  # type: ignore[no-any-return]


#: Methods whose override by a subclass sends every request through Django's own code,
#: since the fast path does not call them.
_REQUEST_CYCLE = (
    "get_response",
    "get_response_async",
    "_get_response",
    "_get_response_async",
    "run_get_response",
    "load_middleware",
    "resolve_request",
    "make_view_atomic",
    "check_response",
    "process_exception_by_middleware",
)


def _overrides_request_cycle(cls: type) -> bool:
    return any(
        getattr(cls, name, None) is not getattr(ASGIHandler, name, None) for name in _REQUEST_CYCLE
    )


def _close_response(response: Any) -> None:
    response.close()


#: How many request paths remember whether their view is sync (then the memo starts over).
_PATH_CACHE_SIZE = 4096

#: Django 4.2 closes the response inside send_response(); 5.0 and later in handle(),
#: racing the request against the client's disconnect.
_CLOSE_IN_HANDLE = django.VERSION >= (5, 0)


class ASGIHandler(_django_asgi.ASGIHandler):  # type: ignore[misc]
    """Django's ``ASGIHandler``, with two thread hand-offs for a sync view behind sync middleware.

    Build it with :func:`get_asgi_application`, which also calls :func:`install`. For a
    request whose view resolves to a sync function, one thread-sensitive hand-off runs
    the ``request_started`` signal, builds the request and runs the middleware that
    only have sync code plus the view, exactly as ``WSGIHandler`` does; a second one
    runs ``response.close()`` after the body is sent. Middleware with async code of
    its own (async-capable middleware that is not a plain ``MiddlewareMixin``) runs on
    the event loop as under Django's handler; then the signal takes a hand-off of its
    own, three in all. A request whose view is async goes through Django's own code.

    The view is looked up with ``settings.ROOT_URLCONF`` before the middleware run, to
    choose the path; a middleware that sets ``request.urlconf`` can only make that guess
    wrong, which costs hand-offs but changes nothing else: Django resolves the view
    again and adapts it either way. Each middleware is instantiated twice (once for
    each path), as in a process that builds both of Django's handlers.
    """

    def __init__(self) -> None:
        install()
        super().__init__()
        self._chains: Chains | None = None
        if not _overrides_request_cycle(type(self)):
            self._chains = Chains(self)
        self._serve_sync = _bridge.sync_to_async(self._respond, thread_sensitive=True)
        self._close_sync = _bridge.sync_to_async(_close_response, thread_sensitive=True)
        self._sync_paths: dict[tuple[object, str], bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; like Django's, only ``http`` scopes are accepted."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with _bridge.ThreadSensitiveContext():
            await self.handle(scope, receive, send)

    def _view_is_sync(self, scope: Scope) -> bool:
        path = scope["path"]
        prefix = _script_prefix(self, scope).rstrip("/")
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :]
        resolver = get_resolver()  # cached by Django; a new one after a settings change
        key = (resolver, path)
        known = self._sync_paths.get(key)
        if known is not None:
            return known
        try:
            match = resolver.resolve(path)
        except Resolver404:
            is_sync = True  # the 404 handler runs in the chain, on the request's thread
        except Exception:
            is_sync = True  # Django raises the same error inside the chain, and answers it
        else:
            is_sync = not _bridge.iscoroutinefunction(match.func)
        if len(self._sync_paths) >= _PATH_CACHE_SIZE:
            self._sync_paths.clear()
        self._sync_paths[key] = is_sync
        return is_sync

    def _respond(self, scope: Scope, body_file: Any, prefix: str) -> tuple[Any, Any]:
        """The first hand-off: what WSGIHandler.__call__ does, up to the response.

        Returns ``(request, response)``; ``request`` is None when the request could
        not be built and ``response`` is Django's error response for it.
        """
        set_script_prefix(prefix)
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            return None, error_response
        assert self._chains is not None
        return request, self._finish(self._chains.core.get_response(request))

    def _finish(self, response: Any) -> Any:
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response

    async def _respond_split(self, scope: Scope, body_file: Any) -> tuple[Any, Any]:
        """The same with outer middleware that run on the loop: signal, then the chain."""
        if hasattr(signals.request_started, "asend"):
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        else:  # Django 4.2
            await _bridge.sync_to_async(signals.request_started.send)(
                sender=self.__class__, scope=scope
            )
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            return None, error_response
        assert self._chains is not None
        outer = self._chains.outer
        assert outer is not None
        return request, self._finish(await outer.get_response_async(request))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request: Django's own ``handle`` unless the view is sync."""
        # getattr: a subclass may skip this __init__, as ASGIStaticFilesHandler does.
        if getattr(self, "_chains", None) is None or not self._view_is_sync(scope):
            await super().handle(scope, receive, send)
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            prefix = _script_prefix(self, scope)
            set_script_prefix(prefix)
            if not _CLOSE_IN_HANDLE:
                # Django 4.2: no disconnect race; send_response() closes the response.
                _request, response = await self._respond_any(scope, body_file, prefix)
                await self.send_response(response, send)
                return
            await self._respond_and_close(scope, body_file, prefix, receive, send)
        finally:
            body_file.close()

    def _respond_any(self, scope: Scope, body_file: Any, prefix: str) -> Awaitable[tuple[Any, Any]]:
        assert self._chains is not None
        if self._chains.outer is None:
            return self._serve_sync(scope, body_file, prefix)
        return self._respond_split(scope, body_file)

    async def _respond_and_close(
        self, scope: Scope, body_file: Any, prefix: str, receive: Receive, send: Send
    ) -> None:
        """Get and send the response while listening for a disconnect, as Django 5+ does."""
        response = None

        async def process() -> None:
            nonlocal response
            _request, response = await self._respond_any(scope, body_file, prefix)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away during send_response

        tasks = [
            asyncio.ensure_future(self.listen_for_disconnect(receive)),
            asyncio.ensure_future(process()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The disconnect listener goes first, as in Django: it raises nothing
            # unexpected that could keep process() from being cancelled.
            for task in tasks:
                if not task.done():
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
        for task in tasks:
            try:
                task.result()
            except (RequestAborted, asyncio.CancelledError):
                pass
        if response is None:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await self._close_sync(response)


def get_asgi_application() -> ASGIHandler:
    """Set Django up and return its ASGI application on asgibridge's scheduler.

    The drop-in for ``django.core.asgi.get_asgi_application()``: call it in
    ``asgi.py`` (``application = get_asgi_application()``), after setting
    ``DJANGO_SETTINGS_MODULE``. It calls :func:`install` first, then
    ``django.setup(set_prefix=False)``, and returns an :class:`ASGIHandler`. Call it
    once per process; it raises what ``django.setup()`` raises for bad settings.
    """
    install()
    django.setup(set_prefix=False)
    return ASGIHandler()
