"""Answers ``AsgiToWsgi`` gives the WSGI server itself, not from the app's response.

Theory of operation
-------------------
The bridge answers on its own in a few cases, all of them rare and none on
the per-request hot path:

* :func:`plain`: a short ``text/plain`` answer: 400 for an unusable request
  (rule A13), 500 when startup failed or the app failed before its body
  (rule A6), 503 once the bridge or its loop is closed;
* :func:`bad_start`: the app sent a response start the WSGI server refused
  (``start_response`` raised): logged, the task cancelled, a 500 instead;
* :func:`send_file`: the app answered with ``http.response.pathsend``: the
  file goes to the server's ``wsgi.file_wrapper`` when it has one (sendfile),
  else to :class:`~._response.FileBody`.

An error answer passes the exception to ``start_response`` as ``exc_info``
where PEP 3333 allows it: WSGI test clients (werkzeug's, httpx's
``WSGITransport``) then re-raise the app's exception, as they do for a
native WSGI app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._codec import status_line, wsgi_headers
from .._types import StartResponse
from ._response import FileBody

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["ERROR_TEXT", "LOOP_STOPPED", "ON_LOOP_THREAD", "bad_start", "plain", "send_file"]

logger = logging.getLogger("asgibridge.asgi")

#: The body of the bridge's own 500 answers.
ERROR_TEXT = "Internal Server Error"
#: The body of the 503 answer when a shared loop was closed under the bridge.
LOOP_STOPPED = "the ASGI event loop has stopped"
#: The error for a WSGI call made on the bridge's own loop thread.
ON_LOOP_THREAD = (
    "AsgiToWsgi was called on its own event loop thread; a WSGI server must call it from its "
    "own threads (sharing the loop with a greenlet executor that runs this WSGI app is not "
    "supported)"
)


def plain(
    start_response: StartResponse, status: str, text: str, exc: BaseException | None = None
) -> list[bytes]:
    """Answer with a short text body; with ``exc``, pass it to ``start_response`` as exc_info."""
    body = text.encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if exc is None:
        start_response(status, headers)
    else:
        start_response(status, headers, (type(exc), exc, exc.__traceback__))
    return [body]


def bad_start(ex: Exchange, exc: Exception, start_response: StartResponse) -> list[bytes]:
    """The server refused the app's response start: log it, cancel the task, answer 500."""
    logger.error(
        "the ASGI app sent a response start the WSGI server cannot use (%s %s)",
        ex.scope["method"],
        ex.scope["path"],
        exc_info=exc,
    )
    ex.abandon()
    start_response(
        "500 Internal Server Error",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "21")],
        (type(exc), exc, exc.__traceback__),
    )
    return [b"Internal Server Error"]


def send_file(
    ex: Exchange,
    path: str,
    environ: dict[str, Any],
    start_response: StartResponse,
    block: int,
) -> Iterable[bytes]:
    """Answer with the file at ``path`` (``http.response.pathsend``), in ``block``-byte reads."""
    try:
        status = status_line(ex.start_status)
        headers = wsgi_headers(ex.start_headers)
        file = open(path, "rb")  # closed by the response iterable
    except Exception as exc:
        logger.error(
            "cannot serve http.response.pathsend for %s %s",
            ex.scope["method"],
            ex.scope["path"],
            exc_info=exc,
        )
        return plain(start_response, "500 Internal Server Error", "Internal Server Error")
    try:
        start_response(status, headers)
    except BaseException:
        file.close()
        raise
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        result: Iterable[bytes] = wrapper(file, block)
        return result
    return FileBody(file, block)
