"""The response side of PEP 3333: ``start_response``, ``write()`` and the iterable.

Theory of operation
-------------------
:func:`run_wsgi` is what runs inside the worker (thread or greenlet): it
calls the app once and feeds its whole response to a
:class:`~._transport.Transport`. This module knows PEP 3333 and nothing
about event loops; the request paths know the loop and nothing about
PEP 3333.

Each response is one :class:`_Response`, whose state is one
:class:`ResponsePhase` (rules C7, C9, C16, C20):

===========  =============================================  ==========================
phase        event                                          next phase
===========  =============================================  ==========================
``NEW``      ``start_response(s, h)``                       ``PENDING``
``PENDING``  ``start_response(s, h, exc)``                  ``PENDING`` (replaced)
``PENDING``  first non-empty chunk / write                  ``SENT``
``PENDING``  a first chunk that completes the body, or a    ``DONE`` (one push)
             file handed to the server (C19)
``PENDING``  end of iterable                                ``DONE`` (empty body)
``SENT``     ``start_response(s, h, exc)``                  re-raises ``exc``
``SENT``     Content-Length reached                         ``DONE`` (stop early)
``SENT``     end of iterable                                ``DONE``
``DONE``     ``start_response(s, h, exc)``                  re-raises ``exc``
===========  =============================================  ==========================

A chunk "completes the body" when it reaches the declared Content-Length,
or when it is the last item of a list or tuple (every chunk already exists,
so the last one is sent as final: one message fewer). A second
``start_response`` without ``exc_info`` is always an error, and so is
``write()`` of data once ``DONE``. ``close()`` on the iterable runs in a
``finally`` block on every path.

The phase changes in :data:`RESPONSE_TRANSITIONS` are the table above in
code; only this module writes ``_Response.phase``. They are not checked on
each write, which would cost instructions on every request; instead
``tests/wsgi/test_wsgi_conformance.py`` records every phase change the code makes
and compares them with the table. Phases are compared by identity against
module constants (``phase is _SENT``), which costs no more than the
booleans they replaced.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .._codec import encode_response_start_cached
from .._types import ExcInfo, Message
from ..errors import AppProtocolError, ClientDisconnected
from ._streams import FileWrapper
from ._transport import Transport

__all__ = ["RESPONSE_TRANSITIONS", "ResponsePhase", "run_wsgi"]

logger = logging.getLogger("asgibridge.wsgi")


_START = "http.response.start"
_BODY = "http.response.body"

# Responses that may declare a Content-Length without carrying a body.
_BODYLESS = frozenset((204, 304))


class ResponsePhase(enum.Enum):
    """Where one response stands (the table in the module docstring)."""

    NEW = "new"  #: ``start_response`` not called yet
    PENDING = "pending"  #: status and headers held; nothing sent
    SENT = "sent"  #: status and headers sent; the body is under way
    DONE = "done"  #: the message that ends the response was handed over


# Module constants: a global load is cheaper than ``ResponsePhase.SENT`` per request.
_NEW: Final = ResponsePhase.NEW
_PENDING: Final = ResponsePhase.PENDING
_SENT: Final = ResponsePhase.SENT
_DONE: Final = ResponsePhase.DONE

#: Every phase change a response makes, ``(from, to)``, and the events that make it.
RESPONSE_TRANSITIONS: Final[Mapping[tuple[ResponsePhase, ResponsePhase], str]] = {
    (_NEW, _PENDING): "start_response(status, headers)",
    (_PENDING, _PENDING): "start_response(status, headers, exc_info) replaces them",
    (_PENDING, _SENT): "first non-empty chunk or write()",
    (_PENDING, _DONE): "a first chunk that completes the body, a file handed over, end of iterable",
    (_SENT, _DONE): "Content-Length reached, or end of iterable",
}


class _Response:
    """One response: the ``start_response`` state machine and Content-Length accounting."""

    __slots__ = ("exempt", "headers", "length", "phase", "sent", "status", "transport")

    status: int
    headers: list[tuple[bytes, bytes]]
    length: int | None

    def __init__(self, transport: Transport, exempt: bool) -> None:
        self.transport = transport
        self.exempt = exempt  # HEAD: a Content-Length without a body is normal
        self.phase: ResponsePhase = _NEW
        # ``status``, ``headers`` and ``length`` are first written by start_response();
        # every reader runs only once the phase has left NEW (three stores and a list
        # fewer per request).
        self.sent = 0

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response`` (rule C7)."""
        if exc_info is not None:
            try:
                if self.phase is _SENT or self.phase is _DONE:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self.phase is not _NEW:
            raise AppProtocolError(
                "start_response() was called a second time without exc_info; call it once, "
                "or pass exc_info=sys.exc_info() to replace the status and headers after an error"
            )
        self.status, self.headers, length = encode_response_start_cached(status, headers)
        if self.exempt or self.status in _BODYLESS or self.status < 200:
            length = None  # no body expected, so nothing to clamp or to find short
        self.length = length
        self.phase = _PENDING
        return self.write

    def _start_message(self) -> Message:
        return {"type": _START, "status": self.status, "headers": self.headers}

    def write(self, data: bytes) -> None:
        """The ``write()`` callable returned by ``start_response`` (rule C8)."""
        phase = self.phase
        if phase is not _SENT and phase is not _PENDING:
            if phase is _NEW:
                raise AppProtocolError("write() was called before start_response()")
            if data:  # DONE
                raise AppProtocolError(
                    f"write() of {len(data)} bytes after the response's Content-Length of "
                    f"{self.length} bytes was already sent"
                )
            return
        data = _as_bytes(data)
        if data:
            self.body(data, True)
        elif phase is _PENDING:
            # An empty write() still commits the status and headers (PEP 3333).
            self.phase = _SENT
            self.transport.push([self._start_message()], False, 0)

    def body(self, data: bytes, from_write: bool = False) -> bool:
        """Send one chunk, clamped to the declared Content-Length (rule C16); True once ``DONE``."""
        n = len(data)
        if not n:
            return False
        length = self.length
        if length is not None and self.sent + n >= length:
            left = length - self.sent
            self.sent = length
            msg: Message = {"type": _BODY, "body": data[:left] if n > left else data}
            if self.phase is _SENT:
                msgs = [msg]
            else:  # _start_message() inline: the path of every small response
                msgs = [{"type": _START, "status": self.status, "headers": self.headers}, msg]
            self.phase = _DONE
            self.transport.push(msgs, True, left)
            if n > left:
                if from_write:
                    raise AppProtocolError(
                        f"write() went {n - left} bytes past the response's Content-Length of "
                        f"{length}; the extra bytes were not sent"
                    )
                logger.warning(
                    "WSGI app sent more than its Content-Length of %d bytes; the response was "
                    "cut at the declared length and iteration stopped",
                    length,
                )
            return True
        self.sent += n
        msg = {"type": _BODY, "body": data, "more_body": True}
        if self.phase is _SENT:
            self.transport.push([msg], False, n)
        else:
            self.phase = _SENT
            self.transport.push([self._start_message(), msg], False, n)
        return False

    def finish(self) -> None:
        """End the response: send what is pending, or find it short (rules C16, C20)."""
        phase = self.phase
        sent = phase is _SENT
        if not sent and phase is not _PENDING:
            if phase is _DONE:
                return
            raise AppProtocolError("the WSGI application returned without calling start_response()")
        length = self.length
        if length is not None and self.sent < length:
            # Not logged here: the error reaches the server, which logs it (once,
            # with its traceback) and aborts the response.
            raise AppProtocolError(
                f"the response declared Content-Length {length} but the application sent only "
                f"{self.sent} bytes; the response is aborted so the client does not wait for "
                "bytes that will never come"
            )
        msg: Message = {"type": _BODY, "body": b""}
        msgs = [msg] if sent else [self._start_message(), msg]
        self.phase = _DONE
        self.transport.push(msgs, True, 0)

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Hand a real file to the server via pathsend / zerocopysend (rule C19).

        Returns False (nothing sent) when neither applies; the caller then
        iterates the wrapper as usual.
        """
        ext = self.transport.extensions
        pathsend = "http.response.pathsend" in ext
        if not (pathsend or "http.response.zerocopysend" in ext):
            return False
        f = wrapper.filelike
        try:
            st = os.fstat(f.fileno())
            pos = f.tell()
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        size = max(0, st.st_size - pos)
        length = self.length
        if length is not None and length > size:
            return False  # the iteration path finds it short and aborts (C16)
        count = size if length is None else length
        if pathsend and pos == 0 and count == st.st_size:
            path = _real_path(f, st)
            if path is not None:
                start = self._file_start(count)
                self.transport.push(
                    [start, {"type": "http.response.pathsend", "path": path}], True, 0
                )
                return True
        if "http.response.zerocopysend" not in ext:
            return False
        start = self._file_start(count)
        self.transport.push_wait(
            [
                start,
                {
                    "type": "http.response.zerocopysend",
                    "file": f,
                    "offset": pos,
                    "count": count,
                    "more_body": False,
                },
            ]
        )
        return True

    def _file_start(self, count: int) -> Message:
        """Enter ``DONE`` for a file of ``count`` bytes; its start message (with a length)."""
        if self.length is None:
            extra = [(b"content-length", str(count).encode("ascii"))]
        else:
            extra = []
        self.headers = [*self.headers, *extra]
        self.phase = _DONE
        self.sent = count
        return self._start_message()


def _real_path(f: Any, st: os.stat_result) -> str | None:
    """The absolute path of the open file ``f``, if its name still names that file."""
    name = getattr(f, "name", None)
    if not isinstance(name, (str, bytes)):
        return None
    path = os.path.abspath(os.fsdecode(name))
    try:
        if not os.path.samestat(os.stat(path), st):
            return None
    except OSError:
        return None
    return path


def _as_bytes(data: object) -> bytes:
    if data.__class__ is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise AppProtocolError(
        f"WSGI response data must be bytes, got {type(data).__name__} {data!r:.60}; "
        "encode text before returning or writing it"
    )


def _returned_none() -> AppProtocolError:
    return AppProtocolError(
        "the WSGI application returned None; it must return an iterable of bytes "
        "(for example [b'...'], or [] after using write())"
    )


def _body_before_start(verb: str) -> AppProtocolError:
    return AppProtocolError(
        f"the WSGI application {verb} body data before calling start_response()"
    )


def run_wsgi(
    app: Callable[[dict[str, Any], Any], Iterable[bytes]],
    environ: dict[str, Any],
    transport: Transport,
) -> None:
    """Call ``app`` once and feed its whole response to ``transport``.

    Runs in the worker. Returns normally when the response is complete or
    when the client went away (``transport.gone``). Raises the app's own
    exceptions unchanged, and :class:`~asgibridge.errors.AppProtocolError`
    when the app broke PEP 3333.
    """
    r = _Response(transport, environ["REQUEST_METHOD"] == "HEAD")
    try:
        iterable = app(environ, r.start_response)
    except ClientDisconnected:
        if transport.gone:
            return
        raise
    if iterable is None:
        raise _returned_none()
    try:
        if iterable.__class__ is FileWrapper and r.phase is _PENDING and not r.exempt:
            if r.send_file(iterable):
                return
        if iterable.__class__ is list or iterable.__class__ is tuple:
            # Every chunk already exists, so sending the last one as final
            # delays nothing and saves a message.
            left = len(iterable)  # a count, not enumerate(): no object per response
            for chunk in iterable:
                left -= 1
                if chunk.__class__ is not bytes:
                    chunk = _as_bytes(chunk)
                if not chunk:
                    continue
                if r.phase is _NEW:
                    raise _body_before_start("returned")
                if not left and r.length is None:
                    r.length = r.sent + len(chunk)
                if r.body(chunk):
                    break  # DONE: nothing left to finish
            else:
                r.finish()
        else:
            for chunk in iterable:
                if chunk.__class__ is not bytes:
                    chunk = _as_bytes(chunk)
                if not chunk:
                    continue
                if r.phase is _NEW:
                    raise _body_before_start("yielded")
                if r.body(chunk):
                    break  # Content-Length reached: stop iterating (PEP 3333)
            else:
                r.finish()
    except ClientDisconnected:
        if not transport.gone:
            raise
    finally:
        if iterable.__class__ is not list:  # a plain list has no close()
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
