"""``python -m compat_matrix``: see :mod:`compat_matrix.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
