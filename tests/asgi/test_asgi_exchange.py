"""The per-request :class:`~asgibridge._asgi.Exchange` as a data structure.

``Exchange.__init__`` sets the :class:`~asgibridge._core.ThreadHome` fields
itself (one call less per request). These tests catch a field added to either
class and left unset, which would surface only as an ``AttributeError`` on a
rare path (a thread-sensitive job, the watchdog, a deadlock message).
"""

from __future__ import annotations

from typing import Any

from asgibridge import AsgiToWsgi
from asgibridge._asgi import Exchange
from asgibridge._core import ThreadHome, current_home, thread_state

# Set after construction by AsgiToWsgi.__call__, just before the task is launched.
LATER = {"context"}


def _slots(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("not reached")


def test_a1_exchange_init_sets_every_slot_it_owns() -> None:
    """Every slot of Exchange and of ThreadHome has a value once __init__ returns."""
    bridge = AsgiToWsgi(_app, lifespan="off")
    try:
        state = thread_state()
        home = current_home(state)
        ex = Exchange(bridge, state, home)
        slots = _slots(Exchange)
        assert set(ThreadHome.__slots__) <= slots
        unset = sorted(name for name in slots - LATER if not hasattr(ex, name))
        assert unset == []
        assert (ex.inbox, ex.ident, ex.name) == (state.inbox, home.ident, home.name)
        assert (ex.busy_job, ex.busy_since) == (None, 0.0)
    finally:
        bridge.close()
