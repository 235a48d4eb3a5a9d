"""The module every server is pointed at: ``compat_matrix.target:app``.

The harness picks the cell through the environment: ``COMPAT_FRAMEWORK`` and
``COMPAT_BRIDGE`` (see :func:`compat_matrix.apps.build`).
"""

from __future__ import annotations

import os

from .apps import build

app = build(os.environ["COMPAT_FRAMEWORK"], os.environ["COMPAT_BRIDGE"])
