"""``python -m asgibridge serve MODULE:ATTR``: the same as the ``asgibridge`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
