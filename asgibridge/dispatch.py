"""``Dispatcher``: one ASGI app made of WSGI and ASGI apps mounted at path prefixes.

Theory of operation
-------------------
A migration from a legacy WSGI app (Flask, Django) to an ASGI framework
(FastAPI, Starlette) usually goes endpoint by endpoint: the new code is
mounted under a prefix such as ``/api/v2`` and everything else still reaches
the legacy app. :class:`Dispatcher` is that switch.

* **Matching** is a scan of the mounts, longest prefix first, and a prefix
  matches only at a segment boundary (``/api`` matches ``/api`` and
  ``/api/x``, never ``/apix``). The path matched is the request path with the
  outer ``root_path`` removed. Nothing else is parsed.
* **Paths** (rule C1 and www.rst): the ASGI ``path`` includes ``root_path``.
  A child mounted at ``/api`` under an outer ``root_path`` of ``/app`` gets
  ``root_path = "/app/api"`` and the full ``path``; a WSGI child therefore
  sees ``SCRIPT_NAME = "/app/api"`` and ``PATH_INFO`` = the rest. A server
  that sends a ``path`` without its ``root_path`` (older servers) has the
  ``root_path`` put in front, so every child sees one consistent convention.
* **WSGI children** are wrapped once, at construction, in
  :class:`~asgibridge.WsgiToAsgi` with the options given.
* **Lifespan** is fanned out: startup goes to every child in mount order
  (the default last), shutdown in reverse. A child that does not support
  lifespan (it raises before asking for ``lifespan.startup``, or returns
  without answering: rule A12) is skipped. A failed startup shuts down the
  children already started and fails the whole app.
* **On a WSGI server**, :meth:`Dispatcher.as_wsgi` gives a WSGI app that
  calls WSGI children directly (no trip through an event loop) and sends
  everything else through one :class:`~asgibridge.AsgiToWsgi` around the
  dispatcher itself, so ASGI children keep one loop and their lifespan.

Detection (:func:`detect_interface`) tells WSGI, ASGI 3 and ASGI 2
(double-callable) apps apart from their call signatures; ``interface=``
overrides it where the signature does not say. It lives in
:mod:`asgibridge._interface` and is re-exported here.

This module is the public surface and the per-request path; the routing
table and the lifespan fan-out are in :mod:`asgibridge._mount`.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ._interface import Interface, as_asgi3, check_interface, detect_interface
from ._mount import Child, fan_out_lifespan, lookup, normalise_prefix, not_found, routing
from ._types import Environ, Receive, Scope, Send, StartResponse
from .asgi import AsgiToWsgi
from .wsgi import WsgiToAsgi

__all__ = ["Dispatcher", "Interface", "WsgiDispatcher", "as_asgi3", "detect_interface"]

logger = logging.getLogger("asgibridge.dispatch")


class Dispatcher:
    """One ASGI 3 application that sends each request to an app mounted at a path prefix.

    ::

        from asgibridge import Dispatcher
        from legacy import flask_app       # WSGI
        from newapi import fastapi_app     # ASGI

        app = Dispatcher({"/api/v2": fastapi_app}, default=flask_app)

    :param mounts: maps path prefixes (``"/api/v2"``; a trailing ``/`` is
        ignored) to WSGI or ASGI apps. The longest matching prefix wins, and a
        prefix matches only at a segment boundary: ``/api`` takes ``/api`` and
        ``/api/users``, not ``/apix``.
    :param default: the app for paths that match no mount. Without one they
        are answered 404 (HTTP) or closed (WebSocket).
    :param interfaces: per-prefix override of :func:`detect_interface`
        (``{"/legacy": "wsgi"}``); the key ``None`` is the default app.
    :param wsgi_options: keyword arguments for the
        :class:`~asgibridge.WsgiToAsgi` that wraps each WSGI child, for
        example ``{"executor": "greenlet"}``.

    HTTP and WebSocket scopes go to the matched child, with ``root_path``
    extended by the prefix and ``path`` unchanged (the ASGI ``path``
    includes ``root_path``). A WebSocket routed to a WSGI child is refused
    with a close (rule C17). Lifespan is fanned out to every child (see
    :meth:`lifespan`). On a WSGI server, serve :meth:`as_wsgi`.

    :raises TypeError: a prefix is not a string or an app's kind cannot be
        detected (use ``interfaces``).
    :raises ValueError: a prefix is malformed or given twice.
    """

    #: Read by :func:`detect_interface` (which cannot import this class): always ASGI 3.
    _asgibridge_interface: ClassVar[str] = "asgi3"

    def __init__(
        self,
        mounts: Mapping[str, Any],
        *,
        default: Any = None,
        interfaces: Mapping[str | None, Interface] | None = None,
        wsgi_options: Mapping[str, Any] | None = None,
    ) -> None:
        overrides = dict(interfaces or {})
        self.wsgi_options = dict(wsgi_options or {})
        children: list[Child] = []
        seen: dict[str, str] = {}
        for raw, app in mounts.items():
            prefix = normalise_prefix(raw)
            if prefix in seen:
                raise ValueError(f"mount prefixes {seen[prefix]!r} and {raw!r} are the same path")
            seen[prefix] = raw
            children.append(self._child(prefix, app, overrides.pop(raw, None)))
        self.default: Child | None = None
        if default is not None and "" in seen:
            raise ValueError(
                f"mount {seen['']!r} and default= both name the app for every other path; "
                "pass only one of them"
            )
        if default is not None:
            self.default = self._child("", default, overrides.pop(None, None))
        if overrides:
            raise ValueError(f"interfaces names prefixes that are not mounted: {list(overrides)}")
        #: Mounts in declaration order (lifespan order).
        self.children: tuple[Child, ...] = tuple(children)
        self._table, self._depth, self._fallback = routing(
            {c.prefix: c for c in children}, self.default
        )

    def _child(self, prefix: str, app: Any, interface: Interface | None) -> Child:
        kind = detect_interface(app) if interface is None else check_interface(interface)
        if kind == "wsgi":
            return Child(prefix, WsgiToAsgi(app, **self.wsgi_options), kind, app)
        return Child(prefix, as_asgi3(app, kind), kind, None)

    def __repr__(self) -> str:
        mounts = ", ".join(f"{c.prefix or '/'!r}: {c.interface}" for c in self.children)
        return f"<Dispatcher {{{mounts}}} default={self.default and self.default.interface}>"

    def match(self, path: str) -> tuple[str, Any] | None:
        """The ``(prefix, app)`` that serves ``path`` (relative to the outer root), or ``None``.

        ``app`` is the child as given (a WSGI child unwrapped).
        """
        child = self._match(path)
        if child is None:
            return None
        return child.prefix, child.wsgi if child.wsgi is not None else child.app

    def _match(self, rel: str) -> Child | None:
        return lookup(self._table, self._depth, self._fallback, rel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if not root:
            child = lookup(self._table, self._depth, self._fallback, path)
            if child is not None:
                await child.app({**scope, "root_path": child.prefix}, receive, send)
                return
        else:
            n = len(root)
            if path.startswith(root) and (len(path) == n or path[n] == "/"):
                rel = path[n:]
            else:  # a server that sent path without root_path: make it consistent
                rel = path
                path = root + path
            child = lookup(self._table, self._depth, self._fallback, rel)
            if child is not None:
                sub = {**scope, "path": path, "root_path": root + child.prefix}
                await child.app(sub, receive, send)
                return
        await not_found(scope["type"], receive, send)

    # ------------------------------------------------------------------ lifespan

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fan the lifespan protocol out to every child.

        Startup goes to the children one at a time in mount order, then the
        default; each must answer before the next starts. A child that raises
        before asking for ``lifespan.startup``, or returns without answering,
        does not support lifespan and is skipped (logged at INFO). A child
        that answers ``lifespan.startup.failed`` or raises after asking makes
        the whole startup fail: the children already started are shut down
        in reverse order and ``lifespan.startup.failed`` names the child.
        Shutdown goes to the started children in reverse order; failures are
        collected into one ``lifespan.shutdown.failed``. Every child shares
        the outer scope's ``state`` dict.
        """
        children = [*self.children, *([self.default] if self.default is not None else [])]
        await fan_out_lifespan(scope, receive, send, children)

    # ------------------------------------------------------------------ WSGI servers

    def as_wsgi(self, **asgi_options: Any) -> WsgiDispatcher:
        """A WSGI application for WSGI servers (gunicorn, waitress) that serves this dispatcher.

        WSGI children are called directly on the server's thread, with
        ``SCRIPT_NAME`` extended by the prefix: no event loop is involved.
        Everything else goes through one :class:`~asgibridge.AsgiToWsgi`
        wrapped around this dispatcher (``asgi_options`` are its keyword
        arguments, e.g. ``lifespan="on"``), so ASGI children share one loop
        and get their lifespan; its startup runs before the first request of
        either kind, in every worker process.
        """
        return WsgiDispatcher(self, **asgi_options)


_wsgi_dispatchers: weakref.WeakSet[WsgiDispatcher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for wd in list(_wsgi_dispatchers):
        wd._ready = not wd._asgi_children  # the bridge starts afresh here (rule A2)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class WsgiDispatcher:
    """The WSGI face of a :class:`Dispatcher`, made by :meth:`Dispatcher.as_wsgi`.

    A request for a WSGI child calls it directly with ``SCRIPT_NAME`` +=
    prefix and ``PATH_INFO`` -= prefix. Any other request goes through
    :attr:`bridge`, an :class:`~asgibridge.AsgiToWsgi` around the dispatcher.
    Lifespan startup of the ASGI children runs before the first request of
    either kind; if it fails, every request is answered 500.
    """

    def __init__(self, dispatcher: Dispatcher, **asgi_options: Any) -> None:
        self.dispatcher = dispatcher
        #: The AsgiToWsgi that serves ASGI children (and runs lifespan).
        self.bridge = AsgiToWsgi(dispatcher, **asgi_options)
        # PATH_INFO is latin-1 "bytes as unicode" (PEP 3333): match prefixes in that space.
        self._table, self._depth, self._fallback = routing(
            {c.latin_prefix: c for c in dispatcher.children},
            dispatcher.default,
        )
        self._default = dispatcher.default
        # Lifespan startup done in this process (reset in a forked child). With no ASGI
        # child there is nothing to start, and the bridge's loop is never needed.
        kids = [*dispatcher.children, *([dispatcher.default] if dispatcher.default else [])]
        self._asgi_children = any(c.wsgi is None for c in kids)
        self._ready = not self._asgi_children
        _wsgi_dispatchers.add(self)

    def __repr__(self) -> str:
        return f"<WsgiDispatcher {self.dispatcher!r}>"

    def close(self) -> None:
        """Run lifespan shutdown and stop the bridge's loop (see :meth:`AsgiToWsgi.close`)."""
        self.bridge.close()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request."""
        path_info: str = environ.get("PATH_INFO") or ""
        child = lookup(self._table, self._depth, self._fallback, path_info)
        if child is None or child.wsgi is None:
            return self.bridge(environ, start_response)
        if not self._ready:
            try:
                self.bridge.start()
                self._ready = True
            except Exception:
                logger.exception("not serving %s: lifespan startup failed", path_info)
                body = b"Internal Server Error"
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                )
                return [body]
        prefix = child.latin_prefix
        if prefix:
            environ["SCRIPT_NAME"] = (environ.get("SCRIPT_NAME") or "") + prefix
            environ["PATH_INFO"] = path_info[len(prefix) :]
        return child.wsgi(environ, start_response)  # type: ignore[no-any-return]
