"""The response of one ``AsgiToWsgi`` request, as the WSGI side receives it.

Theory of operation
-------------------
The app's ``send()`` (:mod:`._exchange`) turns ASGI messages into items on the
exchange's ``pending`` deque; the WSGI thread pops them. An item is one of:

* ``bytes``: a body chunk (never empty);
* :data:`END`: the body is complete (``more_body=False``);
* :class:`Failure`: the app failed before it finished the response;
* :class:`PathSend`: the body is a file (``http.response.pathsend``).

``AsgiToWsgi.__call__`` waits for the first item. A response whose first item
is followed by :data:`END` goes back to the server as a one-item list;
otherwise :class:`ResponseBody` pulls the rest, one item per ``__next__``.

Errors are logged exactly once (rule A6)
    Before any body bytes went out, an app exception becomes a 500: it is
    logged here (:func:`report_failure`) and passed to ``start_response`` as
    ``exc_info``. After them, :meth:`ResponseBody.__next__` re-raises it, the
    server aborts the response and logs it; only when the server closes the
    iterator before reaching the error does :meth:`ResponseBody.close` log it.

Content-Length (rule A14)
    Never more bytes than the app's ``Content-Length`` reach the server
    (:func:`declared_length`, :func:`cut_body`): some WSGI servers (wsgiref)
    write whatever the iterable yields.

End of the response (rules A4, A9)
    The server closing :class:`ResponseBody` before the end of the body means
    the client left: the exchange is abandoned and the ASGI task cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from ..errors import AppProtocolError

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = [
    "END",
    "Failure",
    "FileBody",
    "PathSend",
    "ResponseBody",
    "cut_body",
    "declared_length",
    "report_failure",
]

logger = logging.getLogger("asgibridge.asgi")

#: In ``pending``: the response body is complete.
END = object()


class Failure:
    """In ``pending``: the app failed before finishing the response."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class PathSend:
    """In ``pending``: the body is the file at ``path`` (``http.response.pathsend``)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def report_failure(
    ex: Exchange, exc: BaseException, *, gone: bool, complete: bool, body_out: bool
) -> None:
    """The app raised ``exc``: log it once (A6), and hand a :class:`Failure` to the WSGI side.

    Where the response stood: ``gone``, the client had left; ``complete``, the
    response had ended (the exception came from background work);
    ``body_out``, body bytes had been sent.
    """
    scope = ex.scope
    if gone:
        logger.debug(
            "ASGI application raised after the client went away (%s %s): %r",
            scope["method"],
            scope["path"],
            exc,
        )
        return
    if complete:
        logger.error(
            "Exception in ASGI application after the response was sent (%s %s)",
            scope["method"],
            scope["path"],
            exc_info=exc,
        )
        return
    if body_out:
        # Body data is out: the WSGI iterator re-raises this, the server aborts
        # the response and logs it with its traceback. Logging it here too
        # would log it twice; ResponseBody.close() logs it if the server
        # never iterates that far.
        logger.debug(
            "ASGI application raised after the response started (%s %s): %r; "
            "re-raised to the WSGI server",
            scope["method"],
            scope["path"],
            exc,
        )
        ex.push(Failure(exc))
        return
    logger.error(
        "Exception in ASGI application (%s %s)",
        scope["method"],
        scope["path"],
        exc_info=exc,
    )
    ex.push(Failure(exc))


def declared_length(headers: list[tuple[str, str]]) -> int:
    """The response's ``Content-Length`` as the app declared it, or -1 when there is none."""
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            return int(value) if value.isascii() and value.isdigit() else -1
    return -1


def cut_body(scope: Any, excess: int) -> None:
    """Log that the app sent more body than its ``Content-Length``; the caller cuts it (A14)."""
    logger.warning(
        "the ASGI app sent more body than its Content-Length (%s %s): %d bytes or more too "
        "many, not sent. Fix the app's Content-Length header or its body.",
        scope["method"],
        scope["path"],
        excess,
    )


class ResponseBody:
    """The WSGI response iterable for a streamed response.

    Never more bytes than the app's ``Content-Length`` (``remaining``, -1 when
    it gave none): the excess is cut and logged once, because some WSGI
    servers (wsgiref) write whatever the iterable yields. The rest of the
    app's body is still drained, so its ``send()`` calls complete.
    """

    __slots__ = ("cut", "ex", "first", "remaining", "scope")

    def __init__(self, ex: Exchange, first: bytes, remaining: int = -1) -> None:
        self.ex: Exchange | None = ex
        self.first: bytes | None = first
        self.remaining = remaining
        self.scope = ex.scope
        self.cut = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        item = self.first
        if item is not None:
            self.first = None
        else:
            ex = self.ex
            if ex is None:
                raise StopIteration
            item = ex.next_item()
            if item.__class__ is not bytes:
                self.ex = None
                ex.finish()
                if item is END:
                    raise StopIteration
                if item.__class__ is Failure:
                    # Headers are out: all we can do is abort, so the server drops the
                    # connection. The server logs the error (the bridge did not, A6).
                    raise item.exc
                raise AppProtocolError(f"unexpected response item {item!r}")  # pragma: no cover
        remaining = self.remaining
        if remaining < 0:
            return item
        if len(item) <= remaining:
            self.remaining = remaining - len(item)
            return item
        if not self.cut:
            self.cut = True
            cut_body(self.scope, len(item) - remaining)
        self.remaining = 0
        return item[:remaining]

    def close(self) -> None:
        """Called by the server; before the end of the body it cancels the ASGI task.

        An app exception that was waiting to be re-raised to the server (and
        so to be logged by it) is logged here instead, with its traceback.
        """
        self.first = None
        ex = self.ex
        if ex is not None:
            self.ex = None
            for item in tuple(ex.pending):
                if item.__class__ is Failure:
                    logger.error(
                        "Exception in ASGI application (%s %s); the response had started, "
                        "and the server closed it before the error could abort it",
                        ex.scope["method"],
                        ex.scope["path"],
                        exc_info=item.exc,
                    )
                    break
            ex.abandon()


class FileBody:
    """Reads a ``pathsend`` file in chunks when the server has no ``wsgi.file_wrapper``."""

    __slots__ = ("block", "file")

    def __init__(self, file: IO[bytes], block: int) -> None:
        self.file = file
        self.block = block

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.file.read(self.block)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        self.file.close()
