"""``asgibridge.django`` internals: its middleware chains and the ``asgiref.sync`` rebinding.

:mod:`asgibridge.django` holds the public names (``install``,
``ASGIHandler``, ``get_asgi_application``) and the request path; this folder
holds what they are built from:

* :mod:`._chains`: the two middleware chains of the sync-view fast path
  (imports Django);
* :mod:`._rebind`: rebinding ``asgiref.sync`` names in modules already
  imported (needs nothing from Django).

Importing this folder imports Django, so only ``asgibridge.django`` imports it.
"""

from __future__ import annotations

from ._chains import Chains, runs_on_request_thread
from ._rebind import rebind_imported

__all__ = ["Chains", "rebind_imported", "runs_on_request_thread"]
