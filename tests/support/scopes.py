"""ASGI scopes and WSGI environs to start one request from, in tests and benchmarks.

Each function builds a fresh dict (fresh header lists too) and applies its keyword
arguments on top, so a test may change what it gets without touching anyone else's.

* ``make_scope``: a minimal HTTP/1.1 ``GET /`` scope with one ``host`` header.
* ``uvicorn_scope``: a scope shaped like the ones uvicorn builds (``GET /items/42?a=1&b=2``,
  spec_version 2.4, three headers).
* ``make_environ``: a complete PEP 3333 environ from ``wsgiref.util.setup_testing_defaults``,
  with a request body (``body=``, ``chunked=``, ``stream=``) if asked.
* ``cgi_environ``: the CGI keys a server sets for ``GET /items/42?a=1`` with ``wsgi.input``,
  ``wsgi.errors`` and ``wsgi.url_scheme``, and no other ``wsgi.*`` key.
"""

from __future__ import annotations

import io
import wsgiref.util
from typing import Any

__all__ = ["cgi_environ", "make_environ", "make_scope", "uvicorn_scope"]


def make_scope(**overrides: Any) -> dict[str, Any]:
    """A minimal HTTP scope: ``GET /`` over HTTP/1.1, ``host: example.com``; ``overrides`` on top."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.7", 51234),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
    }
    scope.update(overrides)
    return scope


def uvicorn_scope(**overrides: Any) -> dict[str, Any]:
    """A scope shaped like the ones uvicorn builds; ``overrides`` on top."""
    fields: dict[str, Any] = {
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "path": "/items/42",
        "raw_path": b"/items/42",
        "query_string": b"a=1&b=2",
        "headers": [
            (b"host", b"example.com:8000"),
            (b"user-agent", b"pytest"),
            (b"accept", b"*/*"),
        ],
    }
    fields.update(overrides)
    return make_scope(**fields)


def make_environ(method: str = "GET", path: str = "/", **extra: Any) -> dict[str, Any]:
    """A complete PEP 3333 environ, as wsgiref's test defaults build it.

    ``body`` (bytes) sets ``wsgi.input`` and ``CONTENT_LENGTH``; with
    ``chunked=True`` it sets ``wsgi.input_terminated`` instead; ``stream``
    replaces the input stream. Every other keyword is an environ key.
    """
    body: bytes | None = extra.pop("body", None)
    chunked: bool = extra.pop("chunked", False)
    stream: Any = extra.pop("stream", None)
    environ: dict[str, Any] = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    environ["QUERY_STRING"] = ""
    if body is not None:
        environ["wsgi.input"] = stream if stream is not None else io.BytesIO(body)
        if chunked:
            environ["wsgi.input_terminated"] = True
        else:
            environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(extra)
    return environ


def cgi_environ(**overrides: Any) -> dict[str, Any]:
    """The CGI keys of ``GET /items/42?a=1`` plus input, errors and scheme; ``overrides`` on top."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/items/42",
        "QUERY_STRING": "a=1",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "REMOTE_PORT": "51234",
        "HTTP_HOST": "example.com:8080",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    environ.update(overrides)
    return environ
