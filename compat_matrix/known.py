"""Why a cell does not pass a scenario, when the reason is known.

Two tables, matched with shell-style patterns on
``(bridge, framework, server, scenario)``; the first match wins.

* :data:`NOT_APPLICABLE`: the framework (or server) cannot do the scenario,
  so it is not run. Shown as ``n/a`` with the reason.
* :data:`EXPLAINED`: the scenario runs, and when it fails the failure is
  shown with this reason: ``limitation`` (upstream: a framework, server or
  peer bridge, with a link) or ``bug`` (asgibridge's own, reported in
  ``/work/notes/compat_failures.md`` and fixed under the named rule). A
  failure that matches nothing here is ``fail``: unexplained, and the run
  exits non-zero. An entry that matches a passing scenario is reported as
  stale, so the tables cannot silently outlive the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

__all__ = ["EXPLAINED", "NOT_APPLICABLE", "Reason", "explain", "not_applicable"]


@dataclass(frozen=True)
class Reason:
    bridge: str
    framework: str
    server: str
    scenario: str
    kind: str  # "n/a", "limitation" or "bug"
    text: str
    link: str = ""
    log: str = ""  # if set, the reason holds only when the server's log contains this
    flaky: bool = False  # timing-dependent: a pass where it matches is not reported as stale


NA = "n/a"
LIMIT = "limitation"
BUG = "bug"

NOT_APPLICABLE = [
    Reason("*", "*", "*", "orm", NA, "only Django has an ORM in this matrix"),
    Reason("*", "falcon", "*", "session", NA, "Falcon has no session machinery"),
    Reason("*", "plain", "*", "session", NA, "a plain WSGI callable has no session machinery"),
    Reason(
        "*",
        "django-asgi",
        "*",
        "lifespan",
        NA,
        "Django's ASGIHandler does not implement the lifespan protocol",
        "https://code.djangoproject.com/ticket/31508",
    ),
    Reason(
        "a2wsgi",
        "*",
        "hypercorn-trio*",
        "*",
        NA,
        "a2wsgi needs an asyncio event loop: on trio every request fails (measured: a 500 "
        "with an empty body, then timeouts), so these cells are not run",
        "https://github.com/abersheeran/a2wsgi",
    ),
    Reason(
        "a2wsgi",
        "flask|django|pyramid|bottle|falcon|plain",
        "*",
        "lifespan",
        NA,
        "a2wsgi's WSGIMiddleware has no startup hooks to set state with",
    ),
]

EXPLAINED = [
    Reason(
        "*",
        "django",
        "*",
        "upload-chunked",
        LIMIT,
        "Django's WSGIRequest reads no body without CONTENT_LENGTH and ignores "
        "wsgi.input_terminated, so a chunked upload arrives empty (the same on gunicorn "
        "with no bridge; a fix is proposed upstream)",
        "https://code.djangoproject.com/ticket/35838",
    ),
    Reason(
        "*",
        "bottle",
        "*",
        "upload-chunked",
        LIMIT,
        "Bottle decodes chunked framing itself whenever HTTP_TRANSFER_ENCODING says chunked "
        "and ignores wsgi.input_terminated, so a body the server already decoded answers 400 "
        "(the same on gunicorn with no bridge)",
        "https://github.com/bottlepy/bottle/issues/700",
    ),
    Reason(
        "*",
        "falcon",
        "*",
        "upload-chunked",
        LIMIT,
        "Falcon's req.bounded_stream treats a body without Content-Length as empty and "
        "ignores wsgi.input_terminated (the same on gunicorn with no bridge; closed as "
        "won't fix). On HTTP/2, answering before the body is read then trips hypercorn's "
        "closed-stream bug (below)",
        "https://github.com/falconry/falcon/issues/212",
    ),
    Reason(
        "*",
        "*",
        "wsgiref",
        "upload-chunked",
        LIMIT,
        "wsgiref's server does not decode a chunked request body and sets no "
        "wsgi.input_terminated, so no bridge can see the body",
        "https://docs.python.org/3/library/wsgiref.html#module-wsgiref.simple_server",
    ),
    Reason(
        "*",
        "*",
        "uwsgi",
        "upload-chunked",
        LIMIT,
        "uWSGI 2.0 (pyuwsgi) gives the app no chunked request body on --http-socket: "
        "its wsgi.input needs a Content-Length (chunked input only through uWSGI's own API)",
        "https://github.com/unbit/uwsgi/issues/1428",
    ),
    Reason(
        "asgibridge-*",
        "*",
        "daphne",
        "lifespan",
        LIMIT,
        "daphne does not implement the ASGI lifespan protocol, so no startup hook runs",
        "https://github.com/django/daphne/issues/264",
    ),
    Reason(
        "a2wsgi",
        "*",
        "granian",
        "form|json|upload-5mb|upload-chunked",
        LIMIT,
        "granian's receive() returns an awaitable that is not a coroutine, and a2wsgi's "
        "WSGIMiddleware hands it to asyncio.run_coroutine_threadsafe: every read of a request "
        "body raises TypeError ('A coroutine object is required'), and the app answers 500",
        "https://asgi.readthedocs.io/en/latest/specs/main.html#applications",
    ),
    Reason(
        "a2wsgi",
        "flask|django|pyramid|bottle|falcon|plain",
        "*",
        "disconnect",
        LIMIT,
        "a2wsgi's WSGIMiddleware does not close the app's iterator when the client leaves: "
        "the stream runs on to its end (asgibridge rule C14)",
        "https://peps.python.org/pep-3333/#specification-details",
    ),
    Reason(
        "a2wsgi",
        "flask|pyramid",
        "*",
        "upload-chunked",
        LIMIT,
        "a2wsgi's WSGIMiddleware sets no wsgi.input_terminated, so werkzeug (Flask) and "
        "WebOb (Pyramid) read a body without Content-Length as empty",
        "https://gist.github.com/mitsuhiko/5721547",
    ),
    Reason(
        "a2wsgi",
        "starlette|fastapi|quart|litestar|django-asgi",
        "*",
        "lifespan",
        LIMIT,
        "a2wsgi's ASGIMiddleware never runs the lifespan protocol, so state set at startup "
        "is missing (asgibridge rule A1)",
        "https://asgi.readthedocs.io/en/latest/specs/lifespan.html",
    ),
    Reason(
        "a2wsgi",
        "starlette|fastapi|quart|litestar|django-asgi",
        "gunicorn-*|werkzeug",
        "upload-chunked",
        LIMIT,
        "a2wsgi's ASGIMiddleware reads no body without CONTENT_LENGTH, even when the server "
        "sets wsgi.input_terminated (asgibridge rule A3)",
        "https://gist.github.com/mitsuhiko/5721547",
    ),
    Reason(
        "a2wsgi",
        "starlette|fastapi|quart|litestar",
        "*",
        "disconnect",
        LIMIT,
        "when the WSGI server closes the response iterator, a2wsgi's ASGIMiddleware leaves "
        "the app's task running, so its stream is not cancelled (asgibridge rule A4); "
        "timing-dependent, it passes in some runs. Django's ASGIHandler, which watches for "
        "http.disconnect itself, passes",
        "https://peps.python.org/pep-3333/#specification-details",
        flaky=True,
    ),
    Reason(
        "a2wsgi",
        "*",
        "uwsgi",
        "*",
        LIMIT,
        "a2wsgi's ASGIMiddleware hangs in a pre-forked uWSGI worker: the app is loaded in "
        "the master, and a2wsgi's event loop thread does not survive the fork (measured: no "
        "answer within 20 s; asgibridge rule A2)",
        "https://github.com/abersheeran/a2wsgi/issues/34",
    ),
    Reason(
        "*",
        "*",
        "hypercorn-*-h2c",
        "*",
        LIMIT,
        "hypercorn's HTTP/2 code raises KeyError when request DATA arrives for a stream whose "
        "response has already completed; the connection dies, and on the trio worker the "
        "whole server exits (measured: KeyError in the server log). Fixes are open upstream",
        "https://github.com/pgjones/hypercorn/issues/329",
        log="KeyError",
    ),
]


def _one_of(pattern: str, value: str) -> bool:
    return any(fnmatchcase(value, p) for p in pattern.split("|"))


def _find(
    table: list[Reason], bridge: str, framework: str, server: str, scenario: str
) -> Reason | None:
    for r in table:
        if (
            _one_of(r.bridge, bridge)
            and _one_of(r.framework, framework)
            and _one_of(r.server, server)
            and _one_of(r.scenario, scenario)
        ):
            return r
    return None


def not_applicable(bridge: str, framework: str, server: str, scenario: str) -> Reason | None:
    """The reason ``scenario`` is not run in this cell, or ``None``."""
    return _find(NOT_APPLICABLE, bridge, framework, server, scenario)


def explain(
    bridge: str, framework: str, server: str, scenario: str, log: str = ""
) -> Reason | None:
    """The known reason this scenario fails in this cell, or ``None``.

    :param log: the server's whole log, for reasons that hold only when it
        shows their symptom.
    """
    for r in EXPLAINED:
        if r.log and r.log not in log:
            continue
        if _find([r], bridge, framework, server, scenario):
            return r
    return None
