"""``wsgi.errors`` and ``wsgi.file_wrapper``: the two helper objects PEP 3333 hands the app.

Theory of operation
-------------------
* :class:`ErrorStream` (rule C12) turns text written to ``wsgi.errors`` into
  log records on the ``asgibridge.wsgi`` logger, one per complete line, so an
  app's diagnostics land where the server's logging is configured and never
  on stdout. One instance serves every request of a ``WsgiToAsgi``; a
  partial line is kept per thread until its newline arrives, so requests
  on different worker threads do not mix their lines.
* :class:`FileWrapper` (rule C19) is the class the environ offers as
  ``wsgi.file_wrapper``. Iterating it reads blocks; but when the app returns
  one wrapping a regular file, :func:`~._response.run_wsgi` recognises it by
  its exact class and may hand the file itself to the server
  (``pathsend`` / ``zerocopysend``) instead of copying it through Python.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

__all__ = ["ErrorStream", "FileWrapper"]

logger = logging.getLogger("asgibridge.wsgi")


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
