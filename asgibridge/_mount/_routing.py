"""Routing for ``Dispatcher``: mount prefixes, the lookup table, the longest-prefix match.

Theory of operation
-------------------
A mount prefix is normalised once, at construction (:func:`normalise_prefix`:
a plain path starting with ``/``, no trailing ``/``; ``""`` is the root).
Each mounted app becomes a :class:`Child`, which carries the prefix in two
spellings: the ASGI one (``str``, as ``scope["path"]`` has it) and the
PEP 3333 one (latin-1 "bytes as unicode", as ``PATH_INFO`` has it).

:func:`routing` turns the mounts into a lookup table (one dict from
non-root prefix to child), the depth of its deepest prefix in segments, and
the fallback (a root mount, or the default app). :func:`lookup` then walks
at most that many segments of a path and tries each candidate prefix in the
dict, longest first: the cost per request depends on the path's depth, not
on the number of mounts, and a prefix matches only at a segment boundary
(``/api`` matches ``/api`` and ``/api/x``, never ``/apix``).

:func:`not_found` answers a path that matches nothing when there is no
default: a 404 for HTTP, a close for WebSocket.
"""

from __future__ import annotations

from typing import Any

from .._interface import Interface
from .._types import ASGIApp, Receive, Send
from ..errors import ServerProtocolError

__all__ = ["Child", "lookup", "normalise_prefix", "not_found", "routing"]


def normalise_prefix(prefix: object) -> str:
    """``prefix`` without its trailing ``/`` (``""`` for the root); refuses malformed ones."""
    if not isinstance(prefix, str):
        raise TypeError(f"mount prefixes must be str paths like '/api', got {prefix!r}")
    if prefix in ("", "/"):
        return ""
    if not prefix.startswith("/"):
        raise ValueError(f"mount prefix {prefix!r} must start with '/', for example '/api'")
    if "?" in prefix or "#" in prefix or "//" in prefix:
        raise ValueError(f"mount prefix {prefix!r} must be a plain path (no '?', '#' or '//')")
    return prefix.rstrip("/")


class Child:
    """One mounted app: its prefix (both spellings), its ASGI 3 face and its kind."""

    __slots__ = ("app", "interface", "latin_prefix", "prefix", "wsgi")

    def __init__(self, prefix: str, app: ASGIApp, interface: Interface, wsgi: Any) -> None:
        self.prefix = prefix
        # The prefix as PATH_INFO spells it: latin-1 "bytes as unicode" (PEP 3333).
        self.latin_prefix = prefix.encode("utf-8").decode("latin-1")
        self.app = app  # ASGI 3
        self.interface = interface
        self.wsgi = wsgi  # the raw WSGI app for a WSGI child, else None


def routing(
    by_prefix: dict[str, Child], default: Child | None
) -> tuple[dict[str, Child], int, Child | None]:
    """The lookup table (non-root prefixes), its deepest prefix in segments, and the fallback."""
    table = {p: c for p, c in by_prefix.items() if p}
    depth = max((p.count("/") for p in table), default=0)
    return table, depth, by_prefix.get("", default)


def lookup(table: dict[str, Child], depth: int, fallback: Child | None, rel: str) -> Child | None:
    """The child for ``rel``: its longest prefix that ends at a segment boundary.

    Walks at most ``depth`` segments of the path and tries each candidate
    prefix in one dict, longest first, so the cost does not grow with the
    number of mounts.
    """
    # Depths 1 and 2 (``/api``, ``/api/v2``) are unrolled: a loop costs several times more.
    j = rel.find("/", 1)
    if depth == 1 or j < 0:
        child = table.get(rel if j < 0 else rel[:j])
        return fallback if child is None else child
    if depth == 2:
        k = rel.find("/", j + 1)
        child = table.get(rel if k < 0 else rel[:k])
        if child is None:
            child = table.get(rel[:j])
        return fallback if child is None else child
    ends: list[int] = []
    i = 0
    for _ in range(depth):
        j = rel.find("/", i + 1)
        if j < 0:
            ends.append(len(rel))
            break
        ends.append(j)
        i = j
    for end in reversed(ends):
        child = table.get(rel[:end])
        if child is not None:
            return child
    return fallback


async def not_found(kind: str, receive: Receive, send: Send) -> None:
    """Answer a connection no mount takes: 404 (HTTP), a close (WebSocket), else refuse."""
    if kind == "http":
        body = b"Not Found"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"9"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif kind == "websocket":
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1000})
    else:
        raise ServerProtocolError(
            f"Dispatcher cannot route ASGI scope type {kind!r}: it routes 'http' and "
            "'websocket' scopes by path; send other scope types to another app"
        )
