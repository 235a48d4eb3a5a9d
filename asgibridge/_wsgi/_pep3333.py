"""The WSGI side of ``WsgiToAsgi``: what runs inside the worker (thread or greenlet).

Theory of operation
-------------------
This module knows PEP 3333 and nothing about event loops. It talks to the
loop through a small :class:`Transport` interface with three operations:

* ``push(messages, final, nbytes)``: hand ASGI response messages over. A
  non-final push must leave the data *in transmission* when it returns
  (rule C8): either already sent, or queued for a sender that runs
  concurrently with the app. It may block for backpressure (C13). A final
  push (the message that completes the response) is only queued: the
  request task sends it when the worker returns, so a small response costs
  one hand-off back to the loop, not two.
* ``push_wait(messages)``: send now and return once sent (used for
  ``zerocopysend``, where the file must stay open until the server is done).
* ``pull()``: the next request body chunk as ``(data, more)``.

All three raise :class:`~asgibridge.errors.ClientDisconnected` once the
client is gone (``transport.gone`` is then true), which stops the app.

The response state machine (rules C7, C9, C16, C20):

====================  ===============================  =====================
state                 event                            next state
====================  ===============================  =====================
``NEW``               ``start_response(s, h)``         ``PENDING``
``PENDING``           ``start_response(s, h, exc)``    ``PENDING`` (replaced)
``PENDING``           first non-empty chunk / write    ``SENT``
``PENDING``           end of iterable                  ``DONE`` (empty body)
``SENT``              ``start_response(s, h, exc)``    re-raises ``exc``
``SENT``              Content-Length reached           ``DONE`` (stop early)
``SENT``              end of iterable                  ``DONE``
====================  ===============================  =====================

A second ``start_response`` without ``exc_info`` is always an error.
``close()`` on the iterable runs in a ``finally`` block on every path.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from .._codec import encode_response_start
from .._types import ExcInfo, Message
from ..errors import AppProtocolError, ClientDisconnected

__all__ = [
    "EMPTY_INPUT",
    "ErrorStream",
    "FileWrapper",
    "Input",
    "Transport",
    "run_wsgi",
]

logger = logging.getLogger("asgibridge.wsgi")


_START = "http.response.start"
_BODY = "http.response.body"

# Responses that may declare a Content-Length without carrying a body.
_BODYLESS = frozenset((204, 304))

# Memo of encode_response_start() results. Most apps send the same few
# status + header combinations again and again (validation and encoding
# cost ~2 us; a hit costs ~0.4 us). Cleared when full, so one-off header
# sets (cookies, ETags) cannot keep stable ones out for long.
_START_MEMO: dict[tuple[Any, ...], tuple[int, list[tuple[bytes, bytes]], int | None]] = {}
_START_MEMO_LIMIT = 256


def _encode_start(
    status: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[bytes, bytes]], int | None]:
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


class _EmptyInput:
    """``wsgi.input`` for a request whose (empty) body has fully arrived; stateless."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        """Always ``b""``."""
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        """Always ``b""``."""
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Always ``[]``."""
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())


#: Shared by every request without a body.
EMPTY_INPUT = _EmptyInput()


class Transport(Protocol):
    """How the WSGI side reaches the event loop (see the module docstring)."""

    gone: bool
    extensions: Mapping[str, Any]

    def push(self, messages: list[Message], final: bool, nbytes: int) -> None:
        """Hand response messages over; non-final ones are in transmission on return."""

    def push_wait(self, messages: list[Message]) -> None:
        """Send response messages and return once the server has taken them."""

    def pull(self) -> tuple[bytes, bool]:
        """The next request body chunk as ``(data, more)``."""


# ----------------------------------------------------------------------------- input


class Input:
    """``wsgi.input``: the request body, streamed from the client (rules C10, C11).

    Reads return ``b""`` at the end of the body and never go past
    ``CONTENT_LENGTH``. ``read(n)`` returns exactly ``n`` bytes unless the
    body ends first. If the client disconnects before the whole body has
    arrived, or the body is shorter than ``CONTENT_LENGTH``, reads raise
    :class:`~asgibridge.errors.ClientDisconnected` instead of returning a
    silently truncated body. At most one chunk is held here at a time; the
    rest stays with the server until it is asked for.
    """

    __slots__ = ("_buf", "_left", "_more", "_pos", "_pull", "_total")

    def __init__(
        self,
        pull: Callable[[], tuple[bytes, bool]],
        length: int | None,
        first: bytes = b"",
        more: bool = True,
    ) -> None:
        self._pull = pull
        self._left = length
        self._buf = b""
        self._pos = 0
        self._more = more
        self._total = 0
        if first:
            self._accept(first)

    @property
    def complete(self) -> bool:
        """True once every byte of a declared ``CONTENT_LENGTH`` has been taken from the server."""
        return self._left == 0

    def _accept(self, data: bytes) -> None:
        left = self._left
        if left is not None:
            if len(data) > left:
                data = data[:left]
            self._left = left - len(data)
        self._total += len(data)
        self._buf = data
        self._pos = 0

    def _fill(self) -> bool:
        """Make at least one unread byte available; False at the end of the body."""
        while self._pos >= len(self._buf):
            if self._left == 0:
                return False
            if not self._more:
                if self._left is not None:
                    raise ClientDisconnected(
                        f"the request body ended after {self._total} bytes, short of its "
                        f"Content-Length of {self._total + self._left}; the client sent a "
                        "truncated request"
                    )
                return False
            data, self._more = self._pull()
            self._accept(data)
        return True

    def _take(self, limit: int) -> bytes:
        buf, pos = self._buf, self._pos
        end = pos + limit
        if pos == 0 and end >= len(buf):
            self._pos = len(buf)
            return buf
        self._pos = min(end, len(buf))
        return buf[pos:end]

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes when ``size`` is negative or None)."""
        if size is None or size < 0:
            parts = []
            while self._fill():
                parts.append(self._take(len(self._buf)))
            return b"".join(parts)
        if size == 0 or not self._fill():
            return b""
        chunk = self._take(size)
        if len(chunk) == size:
            return chunk
        parts = [chunk]
        need = size - len(chunk)
        while need > 0 and self._fill():
            chunk = self._take(need)
            parts.append(chunk)
            need -= len(chunk)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, including its ``\\n``, or at most ``size`` bytes of it."""
        if size is None:
            size = -1
        parts = []
        while size != 0 and self._fill():
            buf, pos = self._buf, self._pos
            stop = len(buf) if size < 0 else min(len(buf), pos + size)
            nl = buf.find(b"\n", pos, stop)
            if nl >= 0:
                parts.append(self._take(nl + 1 - pos))
                break
            chunk = self._take(stop - pos)
            parts.append(chunk)
            if size > 0:
                size -= len(chunk)
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end, or until their total size reaches ``hint`` (if positive)."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the lines of the body."""
        while True:
            line = self.readline()
            if not line:
                return
            yield line


# ----------------------------------------------------------------------------- errors


class ErrorStream(io.TextIOBase):
    """``wsgi.errors``: a text stream whose lines go to the ``asgibridge.wsgi`` logger (C12).

    Each complete line becomes one ``ERROR`` record; a partial line waits
    (per thread) for its newline or for :meth:`flush`. Nothing is ever
    written to stdout.
    """

    def __init__(self, log: logging.Logger | None = None) -> None:
        super().__init__()
        self._log = log or logger
        self._local = threading.local()

    def writable(self) -> bool:
        """Always true."""
        return True

    def write(self, s: str) -> int:
        """Log every complete line of ``s``; keep a trailing partial line for later."""
        if not isinstance(s, str):
            raise TypeError(f"wsgi.errors takes str, not {type(s).__name__}")
        pending = getattr(self._local, "pending", "")
        text = pending + s
        if "\n" not in text:
            self._local.pending = text
            return len(s)
        *lines, rest = text.split("\n")
        self._local.pending = rest
        for line in lines:
            self._log.error("%s", line.rstrip("\r"))
        return len(s)

    def flush(self) -> None:
        """Log a pending partial line, if any."""
        pending = getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self._log.error("%s", pending)


# ------------------------------------------------------------------------ file wrapper


class FileWrapper:
    """``wsgi.file_wrapper`` (rule C19): iterate a file-like object in blocks.

    When the iterable an application returns is one of these and wraps a
    regular file, the bridge hands the file to the server with the
    ``http.response.pathsend`` or ``http.response.zerocopysend`` extension
    when the server advertises one; otherwise it reads ``block_size`` bytes
    at a time. :meth:`close` closes the file-like object, if it can be closed.
    """

    __slots__ = ("block_size", "filelike")

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        if not hasattr(filelike, "read"):
            raise TypeError(
                f"wsgi.file_wrapper needs a file-like object with read(), got {filelike!r}"
            )
        self.filelike = filelike
        self.block_size = block_size if block_size and block_size > 0 else 65536

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        """Close the wrapped file-like object, if it has a ``close`` method."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


# --------------------------------------------------------------------------- response


class _Response:
    """One response: the ``start_response`` state machine and Content-Length accounting."""

    __slots__ = (
        "complete",
        "exempt",
        "headers",
        "headers_sent",
        "length",
        "sent",
        "started",
        "status",
        "transport",
    )

    def __init__(self, transport: Transport, exempt: bool) -> None:
        self.transport = transport
        self.exempt = exempt  # HEAD: a Content-Length without a body is normal
        self.started = False
        self.headers_sent = False
        self.complete = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
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
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self.started:
            raise AppProtocolError(
                "start_response() was called a second time without exc_info; call it once, "
                "or pass exc_info=sys.exc_info() to replace the status and headers after an error"
            )
        self.status, self.headers, length = _encode_start(status, headers)
        if self.exempt or self.status in _BODYLESS or self.status < 200:
            length = None  # no body expected, so nothing to clamp or to find short
        self.length = length
        self.started = True
        return self.write

    def _start_message(self) -> Message:
        self.headers_sent = True
        return {"type": _START, "status": self.status, "headers": self.headers}

    def write(self, data: bytes) -> None:
        """The ``write()`` callable returned by ``start_response`` (rule C8)."""
        if not self.started:
            raise AppProtocolError("write() was called before start_response()")
        if self.complete:
            if data:
                raise AppProtocolError(
                    f"write() of {len(data)} bytes after the response's Content-Length of "
                    f"{self.length} bytes was already sent"
                )
            return
        data = _as_bytes(data)
        if data:
            self.body(data, True)
        elif not self.headers_sent:
            # An empty write() still commits the status and headers (PEP 3333).
            self.transport.push([self._start_message()], False, 0)

    def body(self, data: bytes, from_write: bool = False) -> None:
        """Send one non-empty chunk, clamped to the declared Content-Length (rule C16)."""
        n = len(data)
        if not n:
            return
        length = self.length
        if length is not None and self.sent + n >= length:
            left = length - self.sent
            self.sent = length
            self.complete = True
            msg: Message = {"type": _BODY, "body": data[:left] if n > left else data}
            msgs = [msg] if self.headers_sent else [self._start_message(), msg]
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
            return
        self.sent += n
        msg = {"type": _BODY, "body": data, "more_body": True}
        msgs = [msg] if self.headers_sent else [self._start_message(), msg]
        self.transport.push(msgs, False, n)

    def finish(self) -> None:
        """End the response: send what is pending, or find it short (rules C16, C20)."""
        if self.complete:
            return
        if not self.started:
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
        self.complete = True
        msg: Message = {"type": _BODY, "body": b""}
        self.transport.push([msg] if self.headers_sent else [self._start_message(), msg], True, 0)

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
        if length is None:
            extra = [(b"content-length", str(count).encode("ascii"))]
        else:
            extra = []
        if pathsend and pos == 0 and count == st.st_size:
            path = _real_path(f, st)
            if path is not None:
                self.headers = [*self.headers, *extra]
                self.complete = True
                self.sent = count
                start = self._start_message()
                self.transport.push(
                    [start, {"type": "http.response.pathsend", "path": path}], True, 0
                )
                return True
        if "http.response.zerocopysend" not in ext:
            return False
        self.headers = [*self.headers, *extra]
        self.complete = True
        self.sent = count
        start = self._start_message()
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
        raise AppProtocolError(
            "the WSGI application returned None; it must return an iterable of bytes "
            "(for example [b'...'], or [] after using write())"
        )
    try:
        if iterable.__class__ is FileWrapper and r.started and not r.exempt:
            if r.send_file(iterable):
                return
        if iterable.__class__ is list or iterable.__class__ is tuple:
            # Every chunk already exists, so sending the last one as final
            # delays nothing and saves a message.
            last = len(iterable) - 1
            for i, chunk in enumerate(iterable):
                if chunk.__class__ is not bytes:
                    chunk = _as_bytes(chunk)
                if not chunk:
                    continue
                if not r.started:
                    raise AppProtocolError(
                        "the WSGI application returned body data before calling start_response()"
                    )
                if i == last and r.length is None:
                    r.length = r.sent + len(chunk)
                r.body(chunk)
                if r.complete:
                    break
        else:
            for chunk in iterable:
                if chunk.__class__ is not bytes:
                    chunk = _as_bytes(chunk)
                if not chunk:
                    continue
                if not r.started:
                    raise AppProtocolError(
                        "the WSGI application yielded body data before calling start_response()"
                    )
                r.body(chunk)
                if r.complete:
                    break  # Content-Length reached: stop iterating (PEP 3333)
        r.finish()
    except ClientDisconnected:
        if not transport.gone:
            raise
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
