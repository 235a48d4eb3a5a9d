"""The request body of one ``AsgiToWsgi`` request: read on the WSGI thread, handed to the loop.

Theory of operation
-------------------
``wsgi.input`` may only be read on the WSGI thread, and the app asks for the
body on the loop. :class:`RequestBody` is the part of
:class:`~._exchange.Exchange` that moves it across (rules A3, A5, A13):

* :meth:`RequestBody.preread` runs on the WSGI thread before the ASGI task
  starts. It reads up to ``read_chunk_size`` bytes: a whole small body of
  known length, or the start of a chunked one (``wsgi.input_terminated``; a
  GET or HEAD counts only with a ``Transfer-Encoding`` header, since gunicorn
  sets the flag on every request). The app's first ``receive()`` then needs
  no hand-off. With neither ``CONTENT_LENGTH`` nor ``wsgi.input_terminated``
  the body is empty. A ``CONTENT_LENGTH`` that is not ASCII digits is a 400.
* The rest is read on demand: ``receive()`` (:mod:`._exchange`) sets
  ``read_wanted`` and wakes the WSGI thread, which calls
  :meth:`RequestBody.read_body` for one chunk and posts it back to the loop,
  where :meth:`RequestBody.deliver` hands it to the waiting ``receive()``.
* An upload that ends early or fails to read (the client went away) is not a
  short body: the app gets ``http.disconnect`` (``input_gone``).

The state lives in the exchange's slots: ``body`` (the next chunk for
``receive()``, ``None`` when there is none), ``body_more``, ``input`` and
``remaining`` (what is left to read; ``None`` for a chunked body),
``input_gone``, ``read_wanted`` and ``read_fut`` (the ``receive()`` waiting
for a chunk).
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from .._types import Message
    from ._bridge import Bridge

__all__ = ["RequestBody"]

logger = logging.getLogger("asgibridge.asgi")

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


class RequestBody:
    """The request-body half of :class:`~._exchange.Exchange` (a mixin; its slots are there)."""

    if not TYPE_CHECKING:  # the fields are slots of Exchange; mypy checks them there
        __slots__ = ()

    body: bytes | None
    body_more: bool
    bridge: Bridge
    input: IO[bytes] | None
    input_gone: bool
    read_fut: asyncio.Future[Message] | None
    read_wanted: bool
    remaining: int | None

    # ------------------------------------------------------------- WSGI thread

    def preread(self, environ: dict[str, Any]) -> str | None:
        """Read a small body before the app starts; set up on-demand reads otherwise.

        Returns an error message (answered 400) for a ``CONTENT_LENGTH`` that is
        not ASCII digits (rule A13).
        """
        length = environ.get("CONTENT_LENGTH")
        if length:
            # A13: ASCII digits only. int() would take "1_0", "+5", " 5" and
            # non-ASCII digits, and read a different length than the header says.
            if length.__class__ is not str or not (length.isdigit() and length.isascii()):
                return (
                    f"invalid Content-Length {length!r}: it must be ASCII digits only "
                    "(RFC 9110 section 8.6)"
                )
            size = int(length)
            if size == 0:
                return None
            inp = environ["wsgi.input"]
            if size <= self.bridge._read_chunk_size:
                data = _read(inp, size)
                if data is None or len(data) < size:
                    # The client went away mid-upload: the app sees a disconnect.
                    self.body = None
                    self.input_gone = True
                else:
                    self.body = data
                return None
            self.input = inp
            self.remaining = size
            self.body = None
            self.body_more = True
            return None
        if environ.get("wsgi.input_terminated") and (
            "HTTP_TRANSFER_ENCODING" in environ
            or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
        ):
            # gunicorn sets wsgi.input_terminated on every request; a GET or
            # HEAD without Transfer-Encoding has no body, so skip the read.
            self._preread_chunked(environ["wsgi.input"])
        return None

    def _preread_chunked(self, inp: Any) -> None:
        """Read up to ``chunk_size`` bytes of a body of unknown length."""
        limit = self.bridge._read_chunk_size
        parts: list[bytes] = []
        total = 0
        while total < limit:
            part = _read_some(inp, limit - total)
            if part is None:
                self.body = None
                self.input_gone = True
                return
            if not part:
                self.body = b"".join(parts)
                return
            parts.append(part)
            total += len(part)
        self.body = b"".join(parts)
        self.body_more = True
        self.input = inp

    def read_body(self) -> None:
        """Serve one ``receive()`` that needs data from ``wsgi.input``."""
        self.read_wanted = False
        chunk_size = self.bridge._read_chunk_size
        post = self.bridge._post
        inp = self.input
        remaining = self.remaining
        if remaining is None:  # chunked: read until b""
            data = _read_some(inp, chunk_size)
            if data is None:
                post(_deliver, self, b"", False, True)
            else:
                post(_deliver, self, data, bool(data), False)
            return
        data = _read(inp, min(chunk_size, remaining))
        if data is None or not data:
            post(_deliver, self, b"", False, True)
            return
        remaining -= len(data)
        self.remaining = remaining
        post(_deliver, self, data, remaining > 0, False)

    # ---------------------------------------------------------------- loop side

    def deliver(self, data: bytes, more: bool, gone: bool) -> None:
        """Loop callback: one chunk read from ``wsgi.input`` by the WSGI thread."""
        fut = self.read_fut
        if gone:
            self.input_gone = True
            self.body_more = False
            message: Message = _DISCONNECT.copy()
        else:
            self.body_more = more
            message = {"type": "http.request", "body": data, "more_body": more}
        if fut is not None and not fut.done():
            fut.set_result(message)
        elif not gone:
            self.body = data


def _read(inp: Any, size: int) -> bytes | None:
    """Read exactly ``size`` bytes (fewer only at end of input); ``None`` on error."""
    try:
        data = inp.read(size)
        if len(data) < size:
            parts = [data]
            got = len(data)
            while got < size:
                more = inp.read(size - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
    except Exception as exc:
        logger.debug("reading the request body failed: %r", exc)
        return None
    return bytes(data)


def _read_some(inp: Any, size: int) -> bytes | None:
    try:
        return bytes(inp.read(size))
    except Exception as exc:
        logger.debug("reading the request body failed: %r", exc)
        return None


def _deliver(ex: RequestBody, data: bytes, more: bool, gone: bool) -> None:
    ex.deliver(data, more, gone)
