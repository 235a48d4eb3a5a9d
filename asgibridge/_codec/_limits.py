"""Bounds on request headers (rule C21): their defaults, and the answer when one is passed.

Theory of operation
-------------------
A client must not be able to make the bridge spend unbounded time or memory
on one request's headers (CVE-2025-14550 in asgiref: a request with very
many repeats of one header made the join quadratic). Each bound is a field of
:class:`HeaderLimits`, a frozen value with its default written once, here.
:class:`~asgibridge._codec.EnvironBuilder` holds one ``HeaderLimits`` and
checks it while it builds the environ, in the same single pass over the
headers; a request past a bound is refused with
:class:`~asgibridge.errors.RequestRejected` (400) before the application
runs. The messages are built here too, so a bound, its default and its
message sit side by side.

To add a bound: a field (with its default and doc) and, if it needs one, a
message function in this module, then its check in
``EnvironBuilder.build`` (``_environ.py``). ``HeaderLimits`` is frozen, so a
builder's bounds change only by replacing the whole value
(``dataclasses.replace``), never half-way through a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RequestRejected

__all__ = ["DEFAULT_HEADER_LIMITS", "HeaderLimits"]


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """The bounds on a request's headers (rule C21); a request past one is answered 400.

    ``max_headers`` is the most header lines a request may have, counting
    the lines that are dropped (names with ``_``, rule C5).
    ``max_header_repeats`` is the most lines of one header, counted by its
    environ key, so names that differ only in case count together.
    """

    max_headers: int = 100
    max_header_repeats: int = 32


DEFAULT_HEADER_LIMITS = HeaderLimits()


def too_many_headers(count: int, limit: int) -> RequestRejected:
    """The error for a request with ``count`` header lines, more than ``limit``."""
    return RequestRejected(
        f"request has {count} headers, more than max_headers={limit}; "
        "raise WsgiToAsgi(max_headers=...) if your clients legitimately send more"
    )


def too_many_repeats(name: bytes, limit: int) -> RequestRejected:
    """The error for a request that repeats header ``name`` more than ``limit`` times."""
    return RequestRejected(
        f"request repeats header {name.decode('latin-1')!r} more than "
        f"max_header_repeats={limit} times; raise "
        "WsgiToAsgi(max_header_repeats=...) if your clients legitimately "
        "send more"
    )
