"""The phase of a thread-mode request, and the steps it may take.

``ThreadExchange.phase`` (written only in :mod:`._thread_exchange`)::

    ACTIVE --> STREAMING --> SETTLED
    ACTIVE ----------------> SETTLED
    ACTIVE, STREAMING or SETTLED --> GONE   (final)

* ``ACTIVE``: queued for a worker or running; the response, if any, is
  queued whole and sent when the job ends (one round trip).
* ``STREAMING``: the request task has sent part of the response (a
  non-final message); a receiver task watches for the client leaving.
* ``SETTLED``: the worker has posted the request's outcome; the request task
  sends what is left.
* ``GONE``: the client left, sending failed, the loop closed or the request
  task went away: every later worker operation raises
  :class:`~asgibridge.errors.ClientDisconnected` (rules C11, C14). Final.

:data:`TRANSITIONS` lists every step the code may take; a test walks
requests through each of them against it. The hot path compares ``phase``
by identity with the module constants, as cheap as the booleans it replaces.
"""

from __future__ import annotations

import enum

__all__ = ["ACTIVE", "GONE", "SETTLED", "STREAMING", "TRANSITIONS", "Phase"]


class Phase(enum.Enum):
    """Where a thread-mode request is in its life (see the module docstring)."""

    ACTIVE = "active"
    STREAMING = "streaming"
    SETTLED = "settled"
    GONE = "gone"


ACTIVE = Phase.ACTIVE
STREAMING = Phase.STREAMING
SETTLED = Phase.SETTLED
GONE = Phase.GONE

#: Every ``(from, to)`` step of ``ThreadExchange.phase`` the code may take.
TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (ACTIVE, STREAMING),
        (ACTIVE, SETTLED),
        (ACTIVE, GONE),
        (STREAMING, SETTLED),
        (STREAMING, GONE),
        (SETTLED, GONE),
    }
)
