"""WSGI environ -> ASGI ``http`` scope, for ``AsgiToWsgi`` (rule A7).

Theory of operation
-------------------
Pure data translation, once per request, the mirror image of ``_environ``:

* ``root_path`` is ``SCRIPT_NAME`` (``""`` with
  ``root_path_from_script_name=False``, for apps that route on the full path
  themselves).
* Paths: ``path`` is ``SCRIPT_NAME`` + ``PATH_INFO`` decoded from PEP 3333's
  "bytes as latin-1" text as UTF-8; an ASCII path, most requests, needs no
  decoding at all. ``raw_path`` is the server's ``RAW_URI`` or
  ``REQUEST_URI`` without its query, when it matches the path; otherwise the
  path is percent-encoded (``_paths._raw_path_of``).
* Headers come from the ``HTTP_*`` keys plus ``CONTENT_TYPE`` and
  ``CONTENT_LENGTH`` when non-empty, as lowercase latin-1 bytes. A WSGI
  server sends the same environ keys request after request, so which keys
  are headers (and their ASGI names) depends only on the list of keys: the
  plan for the last key list seen is kept (``_last_shape``), and a request
  whose keys compare equal to it uses that plan. Otherwise the plan is
  looked up by the tuple of keys in a bounded memo (``_HEADER_PLANS``). Per
  request the work is one ``[*environ]``, one list comparison (keys are
  mostly the very same objects, so it is an identity check per key) and the
  few header keys, not a test of every key. Measured on granian's environ,
  which carries the server's process environment (56 keys): hashing the key
  tuple cost about 150 instructions per key, the list and its comparison
  about 80; testing each key in Python about 250.
* The keys every PEP 3333 server sends are read with subscripts in one
  ``try`` (cheaper than ``.get()``); if one is missing, all of them are read
  again with ``.get()``, so a missing key means ``None`` as before.
* The scope is a copy of a template dict with its values set: cheaper than
  a dict display of the same keys, in the same order.
* Text that is not latin-1, or values that are not text at all (a broken
  server or middleware), never raise here: a value that is not a str is left
  out, and text is encoded as UTF-8 instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._fields import _CACHE_LIMIT, _latin1
from ._paths import _from_latin1_space, _raw_path_of

__all__ = ["environ_to_scope"]

_HTTP_VERSIONS = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
}

# The keys every PEP 3333 server sends, in the order environ_to_scope reads them.
_SERVER_KEYS = (
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_METHOD",
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
    "SERVER_NAME",
    "SERVER_PORT",
)

# The keys of every scope, in order; environ_to_scope copies it and sets each value.
_TEMPLATE: dict[str, Any] = dict.fromkeys(
    (
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "headers",
        "client",
        "server",
    )
)
_TEMPLATE.update(type="http", query_string=b"", root_path="")

# ASGI header name for each HTTP_* environ key seen so far.
_SCOPE_NAMES: dict[str, bytes] = {}


def _scope_name(key: str) -> bytes:
    name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_SCOPE_NAMES) < _CACHE_LIMIT:
        _SCOPE_NAMES[key] = name
    return name


# _scope_headers: for each tuple of environ keys seen, which of them are
# headers and under which names (see _header_plan). Bounded.
_Pairs = tuple[tuple[str, bytes], ...]
_HEADER_PLANS: dict[tuple[Any, ...], tuple[_Pairs, _Pairs]] = {}

# The two headers CGI names without the HTTP_ prefix, in the order they follow the others.
_CGI_HEADERS = (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length"))


def _header_plan(shape: tuple[Any, ...]) -> tuple[_Pairs, _Pairs]:
    """The (environ key, header name) pairs of the headers in ``shape``.

    First the ``HTTP_*`` keys, in order; then ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH``, those of the two that are present.
    ``HTTP_CONTENT_TYPE`` / ``HTTP_CONTENT_LENGTH`` are skipped: CGI names
    those two headers without the prefix.
    """
    pairs: list[tuple[str, bytes]] = []
    for key in shape:
        if key.__class__ is not str or not key.startswith("HTTP_"):
            continue
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        name = _SCOPE_NAMES.get(key)
        pairs.append((key, name if name is not None else _scope_name(key)))
    present = set(shape)
    plan = (tuple(pairs), tuple(pair for pair in _CGI_HEADERS if pair[0] in present))
    if len(_HEADER_PLANS) >= _CACHE_LIMIT:
        _HEADER_PLANS.clear()  # hostile key churn: start over rather than grow
    _HEADER_PLANS[shape] = plan
    return plan


# The keys of the last environ seen (a list) and their plan: most requests
# compare equal to it, which costs less than hashing the keys (module docstring).
_last_shape: tuple[list[Any], _Pairs, _Pairs] = ([], (), ())


def _scope_headers(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """``scope["headers"]``: the ``HTTP_*`` keys in environ order, then the two CGI ones."""
    # Which environ keys are headers depends only on the keys, and a server
    # sends the same key set again and again: look the plan up by the keys.
    global _last_shape
    keys = [*environ]
    last = _last_shape
    if keys == last[0]:
        plan = last[1]
        cgi = last[2]
    else:
        shape = tuple(keys)
        try:
            plan, cgi = _HEADER_PLANS[shape]
        except KeyError:
            plan, cgi = _header_plan(shape)
        _last_shape = (keys, plan, cgi)
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
    for key, name in cgi:  # CONTENT_TYPE, CONTENT_LENGTH: left out when empty
        value = environ[key]
        if value:
            append((name, _latin1(value)))
    return headers


def environ_to_scope(
    environ: Mapping[str, Any],
    root_path_from_script_name: bool = True,
    extensions: dict[str, dict[str, Any]] | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an ASGI ``http`` scope from a WSGI environ (rule A7; see the module docstring).

    ``state`` is shallow-copied (required per request); ``extensions`` is passed as given.
    """
    try:  # the keys PEP 3333 servers send: subscripts cost less than .get()
        script_name = environ["SCRIPT_NAME"]
        path_info = environ["PATH_INFO"]
        query = environ["QUERY_STRING"]
        method = environ["REQUEST_METHOD"]
        protocol = environ["SERVER_PROTOCOL"]
        scheme = environ["wsgi.url_scheme"]
        server_name = environ["SERVER_NAME"]
        server_port = environ["SERVER_PORT"]
    except KeyError:  # one is missing (SCRIPT_NAME, QUERY_STRING may be): None for those
        script_name, path_info, query, method, protocol, scheme, server_name, server_port = (
            environ.get(key) for key in _SERVER_KEYS
        )
    script_name = script_name or ""
    path_info = path_info or ""
    path = full_path = script_name + path_info
    decoded_script_name = script_name
    if not full_path.isascii():  # most requests are ASCII: nothing to decode
        decoded_script_name = _from_latin1_space(script_name)
        path = decoded_script_name + _from_latin1_space(path_info)
    remote_addr = environ.get("REMOTE_ADDR")
    client = None
    if remote_addr:
        port = environ.get("REMOTE_PORT")  # granian sends none: no KeyError to catch
        try:
            client = (remote_addr, 0 if port is None else int(port))
        except (TypeError, ValueError):
            client = (remote_addr, 0)
    server = None
    if server_name:
        try:
            server = (server_name, int(server_port))
        except (TypeError, ValueError):
            server = (server_name, 443 if scheme == "https" else 80)  # "" and None: http
    scope = _TEMPLATE.copy()  # cheaper than a dict display (module docstring)
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    scope["http_version"] = _HTTP_VERSIONS.get(protocol or "", "1.1")
    scope["method"] = method or "GET"
    scope["scheme"] = scheme or "http"
    scope["path"] = path
    scope["raw_path"] = _raw_path_of(environ, full_path)
    if query:  # else the template's b""
        scope["query_string"] = (
            query.encode() if query.__class__ is str and query.isascii() else _latin1(query)
        )
    if root_path_from_script_name:
        scope["root_path"] = decoded_script_name
    scope["headers"] = _scope_headers(environ)
    scope["client"] = client
    scope["server"] = server
    if extensions is not None:
        scope["extensions"] = extensions
    if state is not None:
        scope["state"] = dict(state)
    return scope
