"""Rebinding ``asgiref.sync`` names already imported, for ``asgibridge.django.install``.

Theory of operation
-------------------
``from asgiref.sync import sync_to_async`` copies the object into the
importing module's namespace when that module is imported, so replacing
``sys.modules["asgiref.sync"]`` reaches only imports still to come.
:func:`rebind_imported` reaches the others: it walks every loaded module's
``__dict__`` and replaces each value that *is* one of asgiref's objects
(compared by identity, under any name) with asgibridge's counterpart.
asgiref's own modules and asgibridge's are left alone. It needs nothing from
Django.
"""

from __future__ import annotations

import sys

__all__ = ["rebind_imported"]


def rebind_imported(swaps: dict[int, tuple[object, object]]) -> None:
    """Point names already bound to asgiref's objects at asgibridge's, in every module."""
    for modname, module in list(sys.modules.items()):
        if module is None or modname == "asgiref" or modname.startswith(("asgiref.", "asgibridge")):
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            pair = swaps.get(id(value))
            if pair is not None and pair[0] is value:
                namespace[key] = pair[1]
