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
overrides it where the signature does not say.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Literal, cast

import anyio
import anyio.abc

from ._interface import iscoroutinefunction
from .asgi import AsgiToWsgi
from .errors import LifespanError, ServerProtocolError
from .wsgi import WsgiToAsgi

__all__ = ["Dispatcher", "Interface", "WsgiDispatcher", "as_asgi3", "detect_interface"]

logger = logging.getLogger("asgibridge.dispatch")

Interface = Literal["wsgi", "asgi3", "asgi2"]
Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]
StartResponse = Callable[..., Any]

_INTERFACES = ("wsgi", "asgi3", "asgi2")
_OVERRIDE_HINT = "pass interface='wsgi', 'asgi3' or 'asgi2' (asgibridge serve: --interface)"


def detect_interface(app: object) -> Interface:
    """Tell whether ``app`` is a WSGI, an ASGI 3 or an ASGI 2 application.

    * ``async def app(scope, receive, send)``, or an object whose
      ``__call__`` is a coroutine function (Starlette, FastAPI, Quart,
      Django's ``ASGIHandler``, :class:`Dispatcher`): ``"asgi3"``.
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
    if isinstance(app, Dispatcher):
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
        return "wsgi" if _required_positional(app) == 2 else "asgi2"
    call = getattr(app, "__call__", None)  # noqa: B004 - the bound method, for its signature
    if iscoroutinefunction(app) or (
        not inspect.isfunction(app) and not inspect.ismethod(app) and iscoroutinefunction(call)
    ):
        return "asgi3"
    positional = _required_positional(app)
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


def _required_positional(app: Any) -> int:
    """How many positional arguments ``app(...)`` requires (a class: its constructor)."""
    try:
        sig = inspect.signature(app)
    except (TypeError, ValueError):
        raise TypeError(
            f"cannot tell whether {app!r} is a WSGI or an ASGI application: it has no "
            f"inspectable signature; {_OVERRIDE_HINT}"
        ) from None
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            if inspect.isclass(app):  # object.__init__(*args): the ASGI 2 reading
                return 1
            raise TypeError(
                f"cannot tell whether {app!r} is a WSGI or an ASGI application: it takes "
                f"*{p.name}; {_OVERRIDE_HINT}"
            )
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            positional += 1
    return positional


def _check_interface(interface: object) -> Interface:
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
    kind = detect_interface(app) if interface is None else _check_interface(interface)
    if kind == "asgi2":
        return _Asgi2To3(app)
    if kind == "wsgi":
        raise TypeError(f"{app!r} is a WSGI application; wrap it in WsgiToAsgi to serve it as ASGI")
    return cast(ASGIApp, app)


def _normalise_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"mount prefixes must be str paths like '/api', got {prefix!r}")
    if prefix in ("", "/"):
        return ""
    if not prefix.startswith("/"):
        raise ValueError(f"mount prefix {prefix!r} must start with '/', for example '/api'")
    if "?" in prefix or "#" in prefix or "//" in prefix:
        raise ValueError(f"mount prefix {prefix!r} must be a plain path (no '?', '#' or '//')")
    return prefix.rstrip("/")


class _Child:
    __slots__ = ("app", "interface", "latin_prefix", "prefix", "wsgi")

    def __init__(self, prefix: str, app: ASGIApp, interface: Interface, wsgi: Any) -> None:
        self.prefix = prefix
        # The prefix as PATH_INFO spells it: latin-1 "bytes as unicode" (PEP 3333).
        self.latin_prefix = prefix.encode("utf-8").decode("latin-1")
        self.app = app  # ASGI 3
        self.interface = interface
        self.wsgi = wsgi  # the raw WSGI app for a WSGI child, else None


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
        children: list[_Child] = []
        seen: dict[str, str] = {}
        for raw, app in mounts.items():
            prefix = _normalise_prefix(raw)
            if prefix in seen:
                raise ValueError(f"mount prefixes {seen[prefix]!r} and {raw!r} are the same path")
            seen[prefix] = raw
            children.append(self._child(prefix, app, overrides.pop(raw, None)))
        self.default: _Child | None = None
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
        self.children: tuple[_Child, ...] = tuple(children)
        self._table, self._depth, self._fallback = _routing(
            {c.prefix: c for c in children}, self.default
        )

    def _child(self, prefix: str, app: Any, interface: Interface | None) -> _Child:
        kind = detect_interface(app) if interface is None else _check_interface(interface)
        if kind == "wsgi":
            return _Child(prefix, WsgiToAsgi(app, **self.wsgi_options), kind, app)
        return _Child(prefix, as_asgi3(app, kind), kind, None)

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

    def _match(self, rel: str) -> _Child | None:
        return _lookup(self._table, self._depth, self._fallback, rel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if not root:
            child = _lookup(self._table, self._depth, self._fallback, path)
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
            child = _lookup(self._table, self._depth, self._fallback, rel)
            if child is not None:
                sub = {**scope, "path": path, "root_path": root + child.prefix}
                await child.app(sub, receive, send)
                return
        await _not_found(scope["type"], receive, send)

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
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise LifespanError(
                f"expected lifespan.startup as the first lifespan message, got {message['type']!r}"
            )
        children = [*self.children, *([self.default] if self.default is not None else [])]
        runners: list[_ChildLifespan] = []
        try:
            await self._lifespan(scope, receive, send, children, runners)
        finally:
            for runner in runners:
                runner.close()

    async def _lifespan(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        children: list[_Child],
        runners: list[_ChildLifespan],
    ) -> None:
        async with anyio.create_task_group() as tg:
            started: list[_ChildLifespan] = []
            failure: str | None = None
            for child in children:
                runner = _ChildLifespan(child, scope)
                runners.append(runner)
                answer = await runner.start(tg)
                if answer == "complete":
                    started.append(runner)
                elif answer == "unsupported":
                    continue
                else:
                    failure = f"{runner.name}: {answer}"
                    break
            if failure is not None:
                logger.error("lifespan startup failed in %s", failure)
                errors = await _shutdown_all(started)
                for text in errors:
                    logger.error("while undoing startup, shutdown failed in %s", text)
                tg.cancel_scope.cancel()
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] != "lifespan.shutdown":  # pragma: no cover - server bug
                raise LifespanError(f"expected lifespan.shutdown, got {message['type']!r}")
            errors = await _shutdown_all(started)
            tg.cancel_scope.cancel()
        if errors:
            await send({"type": "lifespan.shutdown.failed", "message": "; ".join(errors)})
        else:
            await send({"type": "lifespan.shutdown.complete"})

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


def _routing(
    by_prefix: dict[str, _Child], default: _Child | None
) -> tuple[dict[str, _Child], int, _Child | None]:
    """The lookup table (non-root prefixes), its deepest prefix in segments, and the fallback."""
    table = {p: c for p, c in by_prefix.items() if p}
    depth = max((p.count("/") for p in table), default=0)
    return table, depth, by_prefix.get("", default)


def _lookup(
    table: dict[str, _Child], depth: int, fallback: _Child | None, rel: str
) -> _Child | None:
    """The child for ``rel``: its longest prefix that ends at a segment boundary.

    Walks at most ``depth`` segments of the path and tries each candidate
    prefix in one dict, longest first, so the cost does not grow with the
    number of mounts.
    """
    # Depths 1 and 2 (``/api``, ``/api/v2``) are unrolled: a loop costs several times more.
    j = rel.find("/", 1)
    if depth == 1 or j < 0:
        child = table.get(rel if j < 0 else rel[:j])
        return fallback if child is None else child
    if depth == 2:
        k = rel.find("/", j + 1)
        child = table.get(rel if k < 0 else rel[:k])
        if child is None:
            child = table.get(rel[:j])
        return fallback if child is None else child
    ends: list[int] = []
    i = 0
    for _ in range(depth):
        j = rel.find("/", i + 1)
        if j < 0:
            ends.append(len(rel))
            break
        ends.append(j)
        i = j
    for end in reversed(ends):
        child = table.get(rel[:end])
        if child is not None:
            return child
    return fallback


class _ChildLifespan:
    """Drives one child's lifespan coroutine from the dispatcher."""

    def __init__(self, child: _Child, scope: Scope) -> None:
        self.child = child
        self.name = f"the app mounted at {child.prefix!r}" if child.prefix else "the default app"
        self.scope = dict(scope)
        self.to_child, self.child_in = anyio.create_memory_object_stream[Message](2)
        self.child_out, self.from_child = anyio.create_memory_object_stream[Any](2)
        self.received = False

    def close(self) -> None:
        for stream in (self.to_child, self.child_in, self.child_out, self.from_child):
            stream.close()

    async def _receive(self) -> Message:
        self.received = True
        return await self.child_in.receive()

    async def _send(self, message: Message) -> None:
        await self.child_out.send(message)

    async def _run(self) -> None:
        try:
            await self.child.app(self.scope, self._receive, self._send)
        except Exception as exc:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.child_out.send(exc)
        else:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.child_out.send(None)

    async def start(self, tg: anyio.abc.TaskGroup) -> str:
        tg.start_soon(self._run)
        await self.to_child.send({"type": "lifespan.startup"})
        answer = await self.from_child.receive()
        if isinstance(answer, Exception):
            if not self.received:
                logger.info("%s does not support lifespan (it raised %r)", self.name, answer)
                return "unsupported"
            logger.error("%s raised in lifespan startup", self.name, exc_info=answer)
            return f"raised {answer!r}"
        if answer is None:
            logger.info("%s returned from lifespan without answering; skipped", self.name)
            return "unsupported"
        kind = answer.get("type")
        if kind == "lifespan.startup.complete":
            return "complete"
        if kind == "lifespan.startup.failed":
            return str(answer.get("message") or "lifespan.startup.failed")
        return f"answered {kind!r} to lifespan.startup"

    async def shutdown(self) -> str | None:
        await self.to_child.send({"type": "lifespan.shutdown"})
        answer = await self.from_child.receive()
        if isinstance(answer, Exception):
            logger.error("%s raised in lifespan shutdown", self.name, exc_info=answer)
            return f"{self.name}: raised {answer!r}"
        if answer is None or answer.get("type") == "lifespan.shutdown.complete":
            return None
        return f"{self.name}: {answer.get('message') or answer.get('type')}"


async def _shutdown_all(started: list[_ChildLifespan]) -> list[str]:
    errors: list[str] = []
    for runner in reversed(started):
        error = await runner.shutdown()
        if error is not None:
            errors.append(error)
    return errors


async def _not_found(kind: str, receive: Receive, send: Send) -> None:
    if kind == "http":
        body = b"Not Found"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"9"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif kind == "websocket":
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1000})
    else:
        raise ServerProtocolError(
            f"Dispatcher cannot route ASGI scope type {kind!r}: it routes 'http' and "
            "'websocket' scopes by path; send other scope types to another app"
        )


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
        self._table, self._depth, self._fallback = _routing(
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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request."""
        path_info: str = environ.get("PATH_INFO") or ""
        child = _lookup(self._table, self._depth, self._fallback, path_info)
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
