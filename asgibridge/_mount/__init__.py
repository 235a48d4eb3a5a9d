"""``Dispatcher`` internals: routing by path prefix and the lifespan fan-out.

:mod:`asgibridge.dispatch` holds the public surface (``Dispatcher``,
``WsgiDispatcher``) and the per-request code; this folder holds what it is
made of:

* :mod:`._routing`: mount prefixes, the :class:`Child` record, the lookup
  table and the longest-prefix match, the answer for an unmatched path;
* :mod:`._lifespan`: one lifespan conversation fanned out to every child.

A new kind of mount (a host-based rule, say) starts in ``_routing``.
"""

from __future__ import annotations

from ._lifespan import ChildLifespan, fan_out_lifespan
from ._routing import Child, lookup, normalise_prefix, not_found, routing

__all__ = [
    "Child",
    "ChildLifespan",
    "fan_out_lifespan",
    "lookup",
    "normalise_prefix",
    "not_found",
    "routing",
]
