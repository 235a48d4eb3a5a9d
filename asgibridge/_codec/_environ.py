"""ASGI ``http`` scope -> WSGI environ, for ``WsgiToAsgi`` (rules C1-C6, C21).

Theory of operation
-------------------
This module is pure data translation: no I/O, no threads, no event loop. The
bridge calls it once per request, so it sits on the hot path and is written
for speed first, then for strictness:

* ``EnvironBuilder`` (one per ``WsgiToAsgi``; ``build_environ`` is its
  one-shot form) keeps the keys that depend only on the server and the
  bridge (``SCRIPT_NAME``, ``SERVER_*``, the ``wsgi.*`` constants) in a
  template per (scheme, http_version, root_path, server) and copies it for
  each request: one C-level dict copy instead of a dozen inserts.
* The environ build makes exactly one pass over the request headers. The
  conversion of a header name (``b"x-forwarded-for"``) into an environ key
  (``"HTTP_X_FORWARDED_FOR"``), including the decision to drop it (a name
  with ``_``, rule C5) and the check of its characters, is memoised in a
  bounded dict. Real traffic uses a few dozen distinct names, so after warm-up
  a header costs one dict lookup, one latin-1 decode and one
  ``str.isprintable`` call; the full CR/LF/NUL check only runs for the rare
  value that is not plainly printable. The cache stops growing at a fixed
  size, so a client that invents names cannot grow memory; it only loses the
  fast path.
* The header bounds (rule C21) are one ``HeaderLimits`` per builder, checked
  in the same pass. Only a repeated header calls a helper (``_join_repeat``).
* Paths are handled in PEP 3333's "bytes as latin-1 text" space from the
  start (rules C1, C2); an ASCII ``path`` is taken as it is, anything else
  goes through ``_paths._path_info_source``, which also decides whether
  ``raw_path`` can be trusted.
* Anything that looks like request smuggling or header injection is refused
  with :class:`~asgibridge.errors.RequestRejected` before the application
  runs; the bridge turns it into a 400 answer. Error values are built by
  small functions below the class, out of the hot path's way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TextIO

from ..errors import RequestRejected, ServerProtocolError
from ._fields import _CACHE_LIMIT, _TOKEN_CHARS, _has_forbidden
from ._limits import DEFAULT_HEADER_LIMITS, HeaderLimits, too_many_headers, too_many_repeats
from ._paths import _path_info_source, _to_latin1_space

__all__ = ["EnvironBuilder", "build_environ"]

# Environ key for each request header name seen so far. An empty string marks
# a name that is dropped (it contains "_" or is not an ASCII token, rule C5).
_REQUEST_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


def _request_key(name: bytes) -> str:
    """Compute (and memoise) the environ key for a request header name."""
    if not isinstance(name, bytes):
        raise ServerProtocolError(
            f"ASGI header name {name!r} is a {type(name).__name__}, not bytes; "
            "the server or a middleware built scope['headers'] wrongly"
        )
    text = name.decode("latin-1")
    if not text or _has_forbidden(text):
        raise RequestRejected(
            f"request header name {text!r} is empty or contains CR, LF or NUL; "
            "the client sent a malformed request"
        )
    upper = text.upper()
    if "_" in text or not all(char in _TOKEN_CHARS for char in text):
        # C5: "_" could spoof a proxy's header, and only ASCII tokens may become
        # CGI keys: str.upper() maps "\xdf" to "SS", so "x-forwarded-\xdfl" would
        # otherwise become HTTP_X_FORWARDED_SSL.
        key = ""
    elif upper == "CONTENT-TYPE":
        key = "CONTENT_TYPE"
    elif upper == "CONTENT-LENGTH":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + upper.replace("-", "_")
    if len(_REQUEST_KEYS) < _CACHE_LIMIT:
        _REQUEST_KEYS[name] = key
    return key


def _join_repeat(
    environ: dict[str, Any],
    key: str,
    name: bytes,
    text: str,
    repeats: dict[str, int] | None,
    limits: HeaderLimits,
) -> dict[str, int]:
    """Fold a repeated header line into ``environ[key]`` (rule C4), counting it (C21).

    ``repeats`` counts the lines of each repeated key so far (None before the
    first repeat); the updated table is returned.
    """
    if repeats is None:
        repeats = {}
    count = repeats.get(key, 1) + 1
    if count > limits.max_header_repeats:
        raise too_many_repeats(name, limits.max_header_repeats)
    repeats[key] = count
    old = environ[key]
    if key == "HTTP_COOKIE":
        environ[key] = old + "; " + text
    elif key == "CONTENT_LENGTH":
        if old != text:
            raise RequestRejected(
                f"request has conflicting Content-Length headers ({old!r} and "
                f"{text!r}); refused as a possible request smuggling attempt"
            )
    else:
        environ[key] = old + ", " + text
    return repeats


def _bad_header_value(name: bytes, text: str) -> RequestRejected:
    """The error for a request header value with CR/LF/NUL, or a bad Content-Length."""
    if _has_forbidden(text):
        return RequestRejected(
            f"request header {name.decode('latin-1')!r} contains CR, LF or NUL "
            "in its value; the request is refused to prevent header injection"
        )
    return RequestRejected(
        f"request Content-Length {text!r} is not a decimal number; "
        "the client sent a malformed request"
    )


# SERVER_PROTOCOL for the usual scope["http_version"] values.
_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2", "3": "HTTP/3"}


def _name_server(environ: dict[str, Any], scheme: str) -> None:
    """``SERVER_NAME``/``SERVER_PORT`` from the Host header, the best name without a server."""
    default_port = "443" if scheme == "https" else "80"
    host = environ.get("HTTP_HOST")
    if not host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", default_port
        return
    if host.startswith("["):  # IPv6 literal, "[::1]:8080"
        end = host.find("]")
        if end < 0:
            name, port = host, default_port
        else:
            name, rest = host[: end + 1], host[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    if not name:
        name = "localhost"
    if not port or not port.isdigit() or not port.isascii():
        port = default_port
    environ["SERVER_NAME"], environ["SERVER_PORT"] = name, port


def build_environ(
    scope: Mapping[str, Any],
    *,
    errors: TextIO,
    multithread: bool,
    max_headers: int = DEFAULT_HEADER_LIMITS.max_headers,
    max_header_repeats: int = DEFAULT_HEADER_LIMITS.max_header_repeats,
) -> dict[str, Any]:
    """Build a PEP 3333 environ from an ASGI ``http`` scope.

    ``wsgi.input`` is left out; the caller sets it.

    Paths (rules C1, C2): ``PATH_INFO`` is built from ``raw_path`` when the
    server supplies one that agrees with ``path`` (else from ``path``), as
    URL-decoded bytes held in a latin-1 str. ``SCRIPT_NAME`` is ``root_path``
    in the same latin-1 space, without a trailing ``/`` (so ``"/"`` and ``""``
    both give ``""``) and with a leading ``/`` added if it was missing.
    ``root_path`` is removed from the front of the path only on a segment
    boundary: root ``/app`` matches ``/app`` and ``/app/x`` but not
    ``/application``. When the path does not start with ``root_path`` the
    server is taken to be one that passes the path relative to ``root_path``
    (the pre-2.3 ASGI convention, still used by some servers), so
    ``PATH_INFO`` is the path unchanged and ``SCRIPT_NAME`` is still
    ``root_path``.

    Headers (rules C3-C6, C21): names and values are decoded as latin-1.
    ``Content-Type`` and ``Content-Length`` become ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH``; every other header becomes ``HTTP_<NAME>``. Header
    names containing ``_``, and names that are not ASCII RFC 9110 tokens, are
    dropped (rule C5). Repeated headers are joined with
    ``", "``, except ``Cookie`` which is joined with ``"; "``.

    Raises:
        ValueError: ``scope["type"]`` is not ``"http"``.
        RequestRejected: the request must be answered with
            :attr:`RequestRejected.status` (400) without calling the app:
            more than ``max_headers`` header lines, more than
            ``max_header_repeats`` lines of one name, CR/LF/NUL in a header,
            a non-numeric ``Content-Length``, or several different
            ``Content-Length`` values (request smuggling).
        ServerProtocolError: the scope is malformed (for example str
            headers instead of bytes).
    """
    return EnvironBuilder(
        errors=errors,
        multithread=multithread,
        max_headers=max_headers,
        max_header_repeats=max_header_repeats,
    ).build(scope)


# Most distinct (scheme, http_version, root_path, server) templates one
# EnvironBuilder keeps; past it the table is cleared and refilled.
_TEMPLATE_LIMIT = 64


class EnvironBuilder:
    """:func:`build_environ` for one bridge, with its settings fixed and its templates kept.

    The environ keys that depend only on the server and the bridge
    (``SCRIPT_NAME``, ``SERVER_PROTOCOL``, ``SERVER_NAME``, ``SERVER_PORT``,
    the ``wsgi.*`` constants and ``extra``) are built once per distinct
    ``(scheme, http_version, root_path, server)`` and copied for each
    request, which is a C-level copy instead of a dozen Python-level inserts.
    A deployment has a handful of such combinations; the table is bounded
    all the same, so scopes that vary them cost speed, never memory.

    ``extra`` holds further constant keys to put in every environ (for
    ``WsgiToAsgi``: ``wsgi.file_wrapper`` and ``wsgi.input_terminated``).

    The header bounds (rule C21) are ``limits``, a :class:`HeaderLimits`:
    pass ``limits=`` or the ``max_headers`` / ``max_header_repeats``
    keywords (not both). The attributes of the same names read and replace
    one bound each.
    """

    __slots__ = ("_templates", "errors", "extra", "limits", "multithread")

    def __init__(
        self,
        *,
        errors: TextIO,
        multithread: bool,
        max_headers: int = DEFAULT_HEADER_LIMITS.max_headers,
        max_header_repeats: int = DEFAULT_HEADER_LIMITS.max_header_repeats,
        extra: Mapping[str, Any] | None = None,
        limits: HeaderLimits | None = None,
    ) -> None:
        if limits is None:
            limits = HeaderLimits(max_headers, max_header_repeats)
        elif HeaderLimits(max_headers, max_header_repeats) != DEFAULT_HEADER_LIMITS:
            raise TypeError(
                "pass EnvironBuilder limits= or max_headers=/max_header_repeats=, not both"
            )
        self.errors = errors
        self.multithread = multithread
        self.limits = limits
        self.extra = dict(extra) if extra else {}
        self._templates: dict[tuple[Any, ...], dict[str, Any]] = {}

    @property
    def max_headers(self) -> int:
        """``limits.max_headers``; assigning replaces ``limits`` with the new bound."""
        return self.limits.max_headers

    @max_headers.setter
    def max_headers(self, value: int) -> None:
        self.limits = dataclasses.replace(self.limits, max_headers=value)

    @property
    def max_header_repeats(self) -> int:
        """``limits.max_header_repeats``; assigning replaces ``limits`` with the new bound."""
        return self.limits.max_header_repeats

    @max_header_repeats.setter
    def max_header_repeats(self, value: int) -> None:
        self.limits = dataclasses.replace(self.limits, max_header_repeats=value)

    def clear(self) -> None:
        """Forget the templates (after changing ``errors``, ``multithread`` or ``extra``)."""
        self._templates.clear()

    def _template(self, tkey: tuple[Any, ...]) -> dict[str, Any]:
        """Build and keep the template for ``tkey`` = (scheme, http_version, root_path, server)."""
        scheme, http_version, root, server = tkey
        protocol = _PROTOCOLS.get(http_version)
        if protocol is None:
            protocol = "HTTP/" + http_version
        if root:
            root = _to_latin1_space(root).rstrip("/")
            if root and not root.startswith("/"):
                root = "/" + root
        environ: dict[str, Any] = {
            "SCRIPT_NAME": root,
            "SERVER_PROTOCOL": protocol,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.errors": self.errors,
            "wsgi.multithread": self.multithread,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        environ.update(self.extra)
        if server and server[1] is not None:
            environ["SERVER_NAME"] = str(server[0])
            environ["SERVER_PORT"] = str(server[1])
        # else: no server address, or a unix socket; build() names the
        # server after the Host header.
        try:
            hash(tkey)
        except TypeError:  # a list for "server": fine, but not a dict key
            return environ
        if len(self._templates) >= _TEMPLATE_LIMIT:
            self._templates.clear()
        self._templates[tkey] = environ
        return environ

    def build(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The environ for one ASGI ``http`` scope; see :func:`build_environ`."""
        if scope.get("type") != "http":
            raise _not_http(scope)
        scheme = scope.get("scheme") or "http"
        server = scope.get("server")
        tkey = (scheme, scope.get("http_version") or "1.1", scope.get("root_path") or "", server)
        try:
            environ = self._templates[tkey].copy()
        except (KeyError, TypeError):  # a new shape, or a list for "server" (not hashable)
            environ = self._template(tkey).copy()
        try:
            environ["REQUEST_METHOD"] = scope["method"]
        except KeyError:
            raise _no_method() from None
        path = scope.get("path")
        if path.__class__ is not str or not path.isascii():
            path = _path_info_source(scope)
        root = environ["SCRIPT_NAME"]
        if root and path.startswith(root):
            cut = len(root)
            if len(path) == cut or path[cut] == "/":
                path = path[cut:]
        environ["PATH_INFO"] = path
        query = scope.get("query_string")
        environ["QUERY_STRING"] = query.decode("latin-1") if query else ""
        client = scope.get("client")
        if client:
            environ["REMOTE_ADDR"] = str(client[0])
            if len(client) > 1 and client[1] is not None:
                environ["REMOTE_PORT"] = str(client[1])
        headers = scope.get("headers") or ()
        if not isinstance(headers, (list, tuple)):
            headers = list(headers)  # the spec allows any iterable
        limits = self.limits
        if len(headers) > limits.max_headers:
            raise too_many_headers(len(headers), limits.max_headers)
        keys = _REQUEST_KEYS
        repeats: dict[str, int] | None = None
        try:
            for name, value in headers:
                try:
                    key = keys[name]
                except KeyError:
                    key = _request_key(name)
                if not key:
                    continue  # C5: a name with "_" could spoof a proxy's header
                text = value.decode("latin-1")
                if (not text.isprintable() and _has_forbidden(text)) or (
                    key == "CONTENT_LENGTH" and not (text.isdigit() and text.isascii())
                ):
                    raise _bad_header_value(name, text)
                if key not in environ:
                    environ[key] = text
                else:
                    repeats = _join_repeat(environ, key, name, text, repeats, limits)
        except (TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, (RequestRejected, ServerProtocolError)):
                raise
            raise _malformed_headers(exc) from exc
        if "SERVER_NAME" not in environ:  # no server address, or a unix socket
            _name_server(environ, scheme)
        return environ


def _not_http(scope: Mapping[str, Any]) -> ValueError:
    return ValueError(
        f"build_environ needs an ASGI 'http' scope, got type {scope.get('type')!r}; "
        "websocket and lifespan scopes must be handled before building an environ"
    )


def _no_method() -> ServerProtocolError:
    return ServerProtocolError(
        "the ASGI http scope has no 'method' key; the server or a middleware "
        "built the scope wrongly"
    )


def _malformed_headers(exc: Exception) -> ServerProtocolError:
    return ServerProtocolError(
        "scope['headers'] must be an iterable of (bytes, bytes) pairs; "
        f"the server or a middleware built it wrongly ({exc})"
    )
