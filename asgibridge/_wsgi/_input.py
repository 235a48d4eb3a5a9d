"""``wsgi.input``: the request body as PEP 3333 reads it (rules C10, C11).

Theory of operation
-------------------
The body is not buffered: :class:`Input` holds at most one chunk, and asks
the request path for the next one (its ``pull``, the
:class:`~._transport.Transport` operation) only when the app reads past it.
Reads never go past ``CONTENT_LENGTH`` (C10); a body that ends short of it,
or a client that goes away mid-upload, raises
:class:`~asgibridge.errors.ClientDisconnected` rather than handing the app a
silently truncated body (C11).

A request whose (empty) body has fully arrived gets :data:`EMPTY_INPUT`, one
stateless object shared by all of them, so a GET costs no allocation here.
A request path can test ``environ["wsgi.input"].__class__ is Input`` and
:attr:`Input.complete` to learn whether the app took the whole declared body
(greenlet mode does, before it ends the response).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import ClientDisconnected

__all__ = ["EMPTY_INPUT", "Input"]


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
