"""The seam between the PEP 3333 side and the request paths: :class:`Transport`.

Theory of operation
-------------------
The PEP 3333 side (:mod:`._response`, :mod:`._input`, :mod:`._streams`)
knows PEP 3333 and nothing about event loops. It talks to the loop through a
small :class:`Transport` interface with three operations, which each request
path (thread mode, greenlet mode) implements on its per-request object:

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
``extensions`` is the scope's ``extensions`` (``http.response.pathsend``,
``http.response.zerocopysend``; rule C19).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .._types import Message

__all__ = ["Transport"]


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
