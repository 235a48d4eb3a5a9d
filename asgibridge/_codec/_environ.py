"""Translation between ASGI http scopes and WSGI environs, and start_response checks.

Theory of operation
-------------------
This module is pure data translation: no I/O, no threads, no event loop. The
bridges call it once per request, so it sits on the hot path and is written
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
* Paths are handled in PEP 3333's "bytes as latin-1 text" space from the
  start (rule C2): ``raw_path`` is percent-decoded to bytes and decoded as
  latin-1, and ``root_path`` is mapped into the same space before the prefix
  comparison (rule C1), so ``/%FF`` survives as ``'/\\xff'``.
* ``raw_path`` is only trusted when it agrees with ``path``. Middleware that
  rewrites ``scope["path"]`` often leaves a stale ``raw_path`` behind; the
  agreement check costs one encode and one comparison and stops such a
  request from being routed by the old path.
* Anything that looks like request smuggling or header injection is refused
  with :class:`~asgibridge.errors.RequestRejected` before the application
  runs; the bridge turns it into a 400 answer. Mistakes by the application
  (``start_response`` arguments) raise
  :class:`~asgibridge.errors.AppProtocolError`.
* ``environ_to_scope`` is the reverse direction, for ``AsgiToWsgi``
  (rule A7). A WSGI server sends the same environ keys request after
  request, so which keys are headers (and their ASGI names) is looked up
  by the tuple of keys in a bounded memo: per request the work is one
  ``tuple(environ)``, one dict lookup and the few header keys, not a test
  of every key.
* ``status_line`` and ``wsgi_headers`` turn an ASGI app's
  ``http.response.start`` into ``start_response`` arguments for
  ``AsgiToWsgi``: the mirror image of ``encode_response_start``. Hop-by-hop
  headers are dropped, because PEP 3333 reserves them for the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import quote, unquote_to_bytes

from ..errors import AppProtocolError, RequestRejected, ServerProtocolError

__all__ = [
    "EnvironBuilder",
    "build_environ",
    "encode_response_start",
    "encode_response_start_cached",
    "environ_to_scope",
    "status_line",
    "wsgi_headers",
]

# Upper bound for each memo table. Past it, new entries are computed and not
# stored, so hostile input costs speed, never memory.
_CACHE_LIMIT = 512

# Environ key for each request header name seen so far. An empty string marks
# a name that is dropped (it contains "_" or is not an ASCII token, rule C5).
_REQUEST_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}

# Encoded, lowercased response header name for each name an app has used.
_RESPONSE_NAMES: dict[str, bytes] = {}

# ASGI header name for each HTTP_* environ key seen so far.
_SCOPE_NAMES: dict[str, bytes] = {}

# environ_to_scope: for each tuple of environ keys seen, which of them are
# headers and under which names (see _header_plan). Bounded.
_HEADER_PLANS: dict[tuple[Any, ...], tuple[tuple[str, bytes], ...]] = {}

# RFC 9110 "token" characters, allowed in a response header name.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

_HTTP_VERSIONS = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
}

# SERVER_PROTOCOL for the usual scope["http_version"] values.
_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2", "3": "HTTP/3"}

# Characters left unescaped when a raw_path is rebuilt from PATH_INFO.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Characters quote(..., safe=_PATH_SAFE) leaves as they are: a path made only of
# them is its own raw_path.
_UNQUOTED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~" + _PATH_SAFE
)


def _has_forbidden(text: str) -> bool:
    """True when text holds CR, LF or NUL, which must never reach a header."""
    return "\r" in text or "\n" in text or "\0" in text


# A control character that an RFC 9110 field value may not hold: every C0
# character except HTAB, and DEL (rule C22). Bytes 0x80-0xFF are obs-text,
# which the RFC still allows.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def field_value(value: str) -> str:
    """An RFC 9110 field value: ``value`` without surrounding SP/HTAB (rule C22).

    Raises ValueError, naming the character, when ``value`` holds a control
    character other than HTAB (CR, LF, NUL, ``\\x0b``, DEL, ...).

    Callers take a fast path first: a ``str.isprintable()`` value holds no
    control character and no HTAB, so it only needs its spaces stripped.
    """
    bad = _CONTROL.search(value)
    if bad is not None:
        raise ValueError(
            f"control character {bad.group()!r} at offset {bad.start()}; a header value may "
            "hold no control character other than tab (RFC 9110 section 5.5)"
        )
    return value.strip(" \t")


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


def _to_latin1_space(text: str) -> str:
    """Map decoded text into PEP 3333's "bytes as latin-1" space via UTF-8."""
    if text.isascii():
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("latin-1")


def _path_info_source(scope: Mapping[str, Any]) -> str:
    """The full request path, URL-decoded, as latin-1 text (rule C2)."""
    path = scope.get("path")
    if not isinstance(path, str):
        raise ServerProtocolError(
            f"scope['path'] is {path!r}, expected a str; "
            "the server or a middleware built the scope wrongly"
        )
    if path.isascii():
        # Fast path, and most requests. An ASCII path is lossless, so raw_path
        # could only repeat it; and a raw_path that decodes to non-ASCII bytes
        # cannot be the same path (a lossy decode leaves U+FFFD, which is not
        # ASCII), so it would be stale. Either way path is the answer.
        return path
    raw = scope.get("raw_path")
    if not raw or not isinstance(raw, bytes):
        return _to_latin1_space(path)
    cut = raw.find(b"?")
    if cut >= 0:
        raw = raw[:cut]
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    as_text = decoded.decode("latin-1")
    # Servers decode invalid UTF-8 lossily (U+FFFD) or with surrogateescape;
    # environ_to_scope keeps undecodable paths as latin-1 text. All of these
    # still describe the same path, and raw_path is the lossless one.
    if (
        as_text == _to_latin1_space(path)
        or decoded.decode("utf-8", "replace") == path
        or as_text == path
    ):
        return as_text
    # raw_path disagrees with path: a middleware rewrote path and left a stale
    # raw_path behind. path is what the ASGI stack routes on, so it wins.
    return _to_latin1_space(path)


def _split_host(host: str, scheme: str) -> tuple[str, str]:
    """Split a Host header value into (SERVER_NAME, SERVER_PORT)."""
    default_port = "443" if scheme == "https" else "80"
    if host.startswith("["):  # IPv6 literal, "[::1]:8080"
        end = host.find("]")
        if end < 0:
            return host, default_port
        name, rest = host[: end + 1], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    if not name:
        name = "localhost"
    if not port or not port.isdigit() or not port.isascii():
        port = default_port
    return name, port


def build_environ(
    scope: Mapping[str, Any],
    *,
    errors: TextIO,
    multithread: bool,
    max_headers: int = 100,
    max_header_repeats: int = 32,
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
    """

    __slots__ = (
        "_templates",
        "errors",
        "extra",
        "max_header_repeats",
        "max_headers",
        "multithread",
    )

    def __init__(
        self,
        *,
        errors: TextIO,
        multithread: bool,
        max_headers: int = 100,
        max_header_repeats: int = 32,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.errors = errors
        self.multithread = multithread
        self.max_headers = max_headers
        self.max_header_repeats = max_header_repeats
        self.extra = dict(extra) if extra else {}
        self._templates: dict[tuple[Any, ...], dict[str, Any]] = {}

    def clear(self) -> None:
        """Forget the templates (after changing ``errors``, ``multithread`` or ``extra``)."""
        self._templates.clear()

    def _template(self, scheme: str, http_version: str, root: str, server: Any) -> dict[str, Any]:
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
        return environ

    def build(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The environ for one ASGI ``http`` scope; see :func:`build_environ`."""
        scope_type = scope.get("type")
        if scope_type != "http":
            raise ValueError(
                f"build_environ needs an ASGI 'http' scope, got type {scope_type!r}; "
                "websocket and lifespan scopes must be handled before building an environ"
            )

        scheme = scope.get("scheme") or "http"
        http_version = scope.get("http_version") or "1.1"
        root = scope.get("root_path") or ""
        server = scope.get("server")
        templates = self._templates
        tkey = (scheme, http_version, root, server)
        try:
            template = templates.get(tkey)
            keep = True
        except TypeError:  # a list for "server": fine, but not a dict key
            template = None
            keep = False
        if template is None:
            template = self._template(scheme, http_version, root, server)
            if keep:
                if len(templates) >= _TEMPLATE_LIMIT:
                    templates.clear()
                templates[tkey] = template
        environ = template.copy()

        try:
            environ["REQUEST_METHOD"] = scope["method"]
        except KeyError:
            raise ServerProtocolError(
                "the ASGI http scope has no 'method' key; the server or a middleware "
                "built the scope wrongly"
            ) from None
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
        max_headers = self.max_headers
        if len(headers) > max_headers:
            raise RequestRejected(
                f"request has {len(headers)} headers, more than max_headers={max_headers}; "
                "raise WsgiToAsgi(max_headers=...) if your clients legitimately send more"
            )

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
                if not text.isprintable() and _has_forbidden(text):
                    raise RequestRejected(
                        f"request header {name.decode('latin-1')!r} contains CR, LF or NUL "
                        "in its value; the request is refused to prevent header injection"
                    )
                if key == "CONTENT_LENGTH" and not (text.isdigit() and text.isascii()):
                    raise RequestRejected(
                        f"request Content-Length {text!r} is not a decimal number; "
                        "the client sent a malformed request"
                    )
                if key not in environ:
                    environ[key] = text
                    continue
                old = environ[key]
                if repeats is None:
                    repeats = {}
                count = repeats.get(key, 1) + 1
                if count > self.max_header_repeats:
                    raise RequestRejected(
                        f"request repeats header {name.decode('latin-1')!r} more than "
                        f"max_header_repeats={self.max_header_repeats} times; raise "
                        "WsgiToAsgi(max_header_repeats=...) if your clients legitimately "
                        "send more"
                    )
                repeats[key] = count
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
        except (TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, (RequestRejected, ServerProtocolError)):
                raise
            raise ServerProtocolError(
                "scope['headers'] must be an iterable of (bytes, bytes) pairs; "
                f"the server or a middleware built it wrongly ({exc})"
            ) from exc

        if "SERVER_NAME" not in environ:
            # No server address, or a unix socket: the Host header is the best name.
            host = environ.get("HTTP_HOST")
            if host:
                environ["SERVER_NAME"], environ["SERVER_PORT"] = _split_host(host, scheme)
            else:
                environ["SERVER_NAME"] = "localhost"
                environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
        return environ


def _parse_status(status: object) -> int:
    if not isinstance(status, str):
        raise AppProtocolError(
            f"start_response status must be a str such as '200 OK', "
            f"got {type(status).__name__} {status!r}"
        )
    code = status[:3]
    if (
        len(code) != 3
        or not (code.isdigit() and code.isascii())
        or code[0] == "0"
        or (len(status) > 3 and status[3] != " ")
        or _has_forbidden(status)
    ):
        raise AppProtocolError(
            f"start_response status {status!r} is malformed; it must be three "
            "digits (100-999), a space and a reason phrase, for example '200 OK'"
        )
    return int(code)


def _response_name(name: object) -> bytes:
    """Validate, lowercase and encode (and memoise) a response header name."""
    if not isinstance(name, str):
        raise AppProtocolError(
            f"response header name {name!r} must be a str, got {type(name).__name__}"
        )
    if not name or not all(char in _TOKEN_CHARS for char in name):
        raise AppProtocolError(
            f"response header name {name!r} is not a valid HTTP field name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, colons, CR or LF)"
        )
    encoded = name.lower().encode("latin-1")
    if len(_RESPONSE_NAMES) < _CACHE_LIMIT:
        _RESPONSE_NAMES[name] = encoded
    return encoded


def encode_response_start(
    status: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[bytes, bytes]], int | None]:
    """Validate and encode the arguments a WSGI app gave to ``start_response``.

    ``status`` must be three digits (100-999) optionally followed by a space
    and a reason phrase (``"200 OK"``; ``"200"`` and ``"200 "`` are accepted).
    ``headers`` must be a list (or tuple) of ``(str, str)`` pairs. Names must
    be HTTP tokens; they are lowercased and, like values, encoded as latin-1
    (rule C3). Values lose their leading and trailing spaces and tabs, and may
    hold no control character but HTAB (rule C22). Identical repeated
    ``Content-Length`` headers are sent once.

    Returns ``(status_code, headers, content_length)``, where
    ``content_length`` is the app's ``Content-Length`` as an int, or None when
    it sent none (rule C16).

    Raises:
        AppProtocolError: a malformed status, a header that is not a pair of
            str, a value that cannot be encoded as latin-1, a name that is not
            a token, a control character other than HTAB in a value (CR, LF
            and NUL would be header injection), or a ``Content-Length`` that
            is not a decimal number or disagrees with another one.
    """
    code = _parse_status(status)
    if not isinstance(headers, (list, tuple)):
        raise AppProtocolError(
            f"start_response headers must be a list of (name, value) tuples, "
            f"got {type(headers).__name__}"
        )
    names = _RESPONSE_NAMES
    encoded: list[tuple[bytes, bytes]] = []
    content_length: int | None = None
    for item in headers:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise AppProtocolError(
                f"start_response header {item!r} must be a (name, value) tuple of two str"
            )
        name, value = item
        raw_name = names.get(name) if isinstance(name, str) else None
        if raw_name is None:
            raw_name = _response_name(name)
        if not isinstance(value, str):
            raise AppProtocolError(
                f"response header {name!r} has a {type(value).__name__} value {value!r}; "
                "WSGI header values must be str"
            )
        if not value.isprintable():
            # Slow path (C22): a tab, a control character, or non-ASCII text.
            try:
                value = field_value(value)
            except ValueError as exc:
                raise AppProtocolError(
                    f"response header {name!r} value {value!r} is refused: {exc}. CR, LF and "
                    "NUL would allow header injection; remove or encode the character"
                ) from None
        else:
            # C22: Django's Set-Cookie values start with a space. strip() returns
            # the same object when there is nothing to strip (~35 ns).
            value = value.strip(" ")
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise AppProtocolError(
                f"response header {name!r} value {value!r} cannot be encoded as "
                "latin-1; encode non-latin-1 text yourself (for example RFC 8187 "
                "or percent-encoding) before passing it to start_response"
            ) from None
        if raw_name == b"content-length":
            if not (value.isdigit() and value.isascii()):
                raise AppProtocolError(f"response Content-Length {value!r} is not a decimal number")
            length = int(value)
            if content_length is not None:
                if length != content_length:
                    raise AppProtocolError(
                        f"response has conflicting Content-Length headers "
                        f"({content_length} and {length})"
                    )
                continue
            content_length = length
        encoded.append((raw_name, raw_value))
    return code, encoded, content_length


# Memo of encode_response_start() results. Most apps send the same few
# status + header combinations again and again (validation and encoding
# cost ~2 us; a hit costs ~0.4 us). Cleared when full, so one-off header
# sets (cookies, ETags) cannot keep stable ones out for long.
_START_MEMO: dict[tuple[Any, ...], tuple[int, list[tuple[bytes, bytes]], int | None]] = {}
_START_MEMO_LIMIT = 256


def encode_response_start_cached(
    status: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[bytes, bytes]], int | None]:
    """:func:`encode_response_start`, memoised on ``(status, *headers)``.

    Same arguments, result and errors. Only a ``list`` of hashable items is
    memoised (anything else is encoded every time); each call returns a new
    header list, so the caller may change it. The memo is bounded: when full
    it is cleared, so one-off header sets cost speed, never memory.
    """
    key: tuple[Any, ...] | None = None
    hit = None
    if headers.__class__ is list:
        try:
            key = (status, *headers)
            hit = _START_MEMO.get(key)
        except TypeError:  # unhashable items (lists instead of tuples): no memo
            key = None
    if hit is not None:
        return hit[0], list(hit[1]), hit[2]
    result = encode_response_start(status, headers)
    if key is not None:
        if len(_START_MEMO) >= _START_MEMO_LIMIT:
            _START_MEMO.clear()
        _START_MEMO[key] = (result[0], list(result[1]), result[2])
    return result


def _header_plan(shape: tuple[Any, ...]) -> tuple[tuple[str, bytes], ...]:
    """The (environ key, header name) pairs of the ``HTTP_*`` keys in ``shape``, in order.

    ``HTTP_CONTENT_TYPE`` / ``HTTP_CONTENT_LENGTH`` are skipped: CGI names
    those two headers without the prefix (``CONTENT_TYPE``, ``CONTENT_LENGTH``).
    """
    pairs: list[tuple[str, bytes]] = []
    for key in shape:
        if key.__class__ is not str or not key.startswith("HTTP_"):
            continue
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        name = _SCOPE_NAMES.get(key)
        pairs.append((key, name if name is not None else _scope_name(key)))
    plan = tuple(pairs)
    if len(_HEADER_PLANS) >= _CACHE_LIMIT:
        _HEADER_PLANS.clear()  # hostile key churn: start over rather than grow
    _HEADER_PLANS[shape] = plan
    return plan


def _scope_name(key: str) -> bytes:
    name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_SCOPE_NAMES) < _CACHE_LIMIT:
        _SCOPE_NAMES[key] = name
    return name


def _from_latin1_space(text: str) -> str:
    """Decode PEP 3333 "bytes as latin-1" text as UTF-8 for ASGI."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _latin1(text: Any) -> bytes:
    """PEP 3333 text as bytes; text that is not latin-1 (a broken server) never raises."""
    try:
        return bytes(text.encode("latin-1"))
    except UnicodeEncodeError:
        return bytes(text.encode("utf-8", "surrogatepass"))
    except AttributeError:
        return str(text).encode("utf-8", "surrogatepass")


def _raw_path(environ: Mapping[str, Any], full_path: str) -> bytes:
    """The raw request path: the server's original one if it matches, else quoted."""
    try:
        target_bytes = full_path.encode("latin-1")
    except UnicodeEncodeError:
        target_bytes = full_path.encode("utf-8", "surrogatepass")
    for key in ("RAW_URI", "REQUEST_URI"):
        uri = environ.get(key)
        if not uri or not isinstance(uri, str):
            continue
        uri = uri.partition("?")[0]
        if not uri.startswith("/"):
            # absolute-form request target, "http://host/path"
            scheme_end = uri.find("://")
            if scheme_end < 0:
                continue
            slash = uri.find("/", scheme_end + 3)
            uri = uri[slash:] if slash >= 0 else "/"
        try:
            raw = uri.encode("latin-1")
        except UnicodeEncodeError:
            continue
        # Only trust it when it is the same path (a middleware may have moved
        # SCRIPT_NAME/PATH_INFO without updating REQUEST_URI).
        if (unquote_to_bytes(raw) if b"%" in raw else raw) == target_bytes:
            return raw
    return quote(target_bytes, safe=_PATH_SAFE).encode("ascii")


def environ_to_scope(
    environ: Mapping[str, Any],
    *,
    root_path_from_script_name: bool = True,
    extensions: dict[str, dict[str, Any]] | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an ASGI ``http`` scope from a WSGI environ (rule A7).

    ``root_path`` is ``SCRIPT_NAME`` and ``path`` is ``SCRIPT_NAME`` +
    ``PATH_INFO``, both decoded from latin-1 "bytes as text" to UTF-8 (kept
    as they are when they are not valid UTF-8). With
    ``root_path_from_script_name=False``, ``root_path`` is ``""`` and
    ``path`` is still the full ``SCRIPT_NAME`` + ``PATH_INFO``, for apps that
    route on the full path themselves.

    ``raw_path`` is the server's ``RAW_URI`` or ``REQUEST_URI`` without its
    query, when it matches the path; otherwise the path is percent-encoded.
    Headers come from the ``HTTP_*`` keys plus ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH`` when non-empty, as lowercase latin-1 bytes.

    ``state`` is shallow-copied, as the lifespan specification requires for
    each request. ``extensions`` is passed as given.
    """
    script_name = environ.get("SCRIPT_NAME") or ""
    path_info = environ.get("PATH_INFO") or ""
    full_path = script_name + path_info
    if full_path.isascii():  # most requests: nothing to decode
        decoded_script_name = script_name
        path = full_path
    else:
        decoded_script_name = _from_latin1_space(script_name)
        path = decoded_script_name + _from_latin1_space(path_info)
    root_path = decoded_script_name if root_path_from_script_name else ""

    scheme = environ.get("wsgi.url_scheme") or "http"
    # Which environ keys are headers depends only on the keys, and a server
    # sends the same key set again and again: look the plan up by the keys.
    shape = tuple(environ)
    plan = _HEADER_PLANS.get(shape)
    if plan is None:
        plan = _header_plan(shape)
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    for key, name in plan:
        value = environ[key]
        if value.__class__ is not str and not isinstance(value, str):
            continue  # not text: a broken middleware; leave it out
        try:
            append((name, value.encode("latin-1")))
        except UnicodeEncodeError:
            append((name, value.encode("utf-8", "surrogateescape")))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        append((b"content-type", _latin1(content_type)))
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        append((b"content-length", _latin1(content_length)))

    # raw_path: the server's own request target when it is plainly this path
    # (the common case, checked inline); _raw_path handles everything else.
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    raw_path = None
    if uri.__class__ is str and uri.startswith("/"):
        cut = uri.find("?")
        target = uri[:cut] if cut >= 0 else uri
        if target == full_path and "%" not in target and full_path.isascii():
            raw_path = full_path.encode("ascii")
    if raw_path is None:
        if uri is None and _UNQUOTED.issuperset(full_path):
            # No request target from the server (granian sends none) and
            # nothing to percent-encode: quote() would return the path itself.
            raw_path = full_path.encode("ascii")
        else:
            raw_path = _raw_path(environ, full_path)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": _HTTP_VERSIONS.get(environ.get("SERVER_PROTOCOL") or "", "1.1"),
        "method": environ.get("REQUEST_METHOD") or "GET",
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": _latin1(environ.get("QUERY_STRING") or ""),
        "root_path": root_path,
        "headers": headers,
    }

    remote_addr = environ.get("REMOTE_ADDR")
    if remote_addr:
        try:
            scope["client"] = (remote_addr, int(environ["REMOTE_PORT"]))
        except (KeyError, TypeError, ValueError):
            scope["client"] = (remote_addr, 0)
    else:
        scope["client"] = None
    server_name = environ.get("SERVER_NAME")
    if server_name:
        try:
            scope["server"] = (server_name, int(environ["SERVER_PORT"]))
        except (KeyError, TypeError, ValueError):
            scope["server"] = (server_name, 443 if scheme == "https" else 80)
    else:
        scope["server"] = None
    if extensions is not None:
        scope["extensions"] = extensions
    if state is not None:
        scope["state"] = dict(state)
    return scope


# ------------------------------------------------- ASGI response -> WSGI response

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

_STATUS_LINES = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}

# Decoded response header name for each raw name seen; "" marks a hop-by-hop
# header that a WSGI application must not send (PEP 3333). Bounded.
_NAMES: dict[bytes, str] = {}
_NAMES_LIMIT = 512


def status_line(status: Any) -> str:
    """``200`` -> ``"200 OK"``; raises AppProtocolError for a status that is not an int."""
    line = _STATUS_LINES.get(status)
    if line is not None and status.__class__ is int:
        return line
    if status.__class__ is not int or not 100 <= status <= 999:
        raise AppProtocolError(
            f"http.response.start has status {status!r}; it must be an int from 100 to 999"
        )
    return f"{status} Unknown"


def wsgi_headers(raw: Any) -> list[tuple[str, str]]:
    """ASGI ``[(b"name", b"value"), ...]`` -> WSGI ``[("name", "value"), ...]`` (latin-1).

    Hop-by-hop headers are dropped: PEP 3333 reserves them for the server.
    Names must be RFC 9110 tokens and values field values, without their
    surrounding spaces and tabs (rules A11, C22), because some WSGI servers
    (waitress) write whatever they are given.

    Raises:
        AppProtocolError: a name that is not a token, a value with a control
            character other than HTAB, or headers that are not byte pairs.
    """
    out: list[tuple[str, str]] = []
    names = _NAMES
    try:
        for name, value in raw:
            text = names.get(name)
            if text is None:
                text = bytes(name).decode("latin-1")
                if not text or not all(char in _TOKEN_CHARS for char in text):
                    raise ValueError(
                        f"header name {bytes(name)!r} is not an RFC 9110 token (letters, "
                        "digits and !#$%&'*+-.^_`|~ only; no spaces, colons or control "
                        "characters)"
                    )
                if text.lower() in _HOP_BY_HOP:
                    text = ""
                if len(names) < _NAMES_LIMIT:
                    names[bytes(name)] = text
            if text:
                text_value = bytes(value).decode("latin-1")
                if text_value.isprintable():
                    text_value = text_value.strip(" ")
                else:
                    try:
                        text_value = field_value(text_value)
                    except ValueError as exc:
                        raise ValueError(f"the value of header {text!r}: {exc}") from None
                out.append((text, text_value))
    except (TypeError, ValueError) as exc:
        raise AppProtocolError(
            f"http.response.start has invalid headers ({exc}); headers must be an iterable "
            "of (name, value) byte-string pairs, names RFC 9110 tokens and values free of "
            "control characters"
        ) from None
    return out
