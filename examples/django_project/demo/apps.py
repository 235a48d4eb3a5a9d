"""The demo app: records request signals, so tests can check their order and thread."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from django.apps import AppConfig
from django.core import signals

#: (event, thread ident, path) for the last requests: "started", "view", "finished".
EVENTS: deque[tuple[str, int, str]] = deque(maxlen=200)


def _started(sender: Any, scope: Any = None, environ: Any = None, **kwargs: Any) -> None:
    path = scope["path"] if scope is not None else (environ or {}).get("PATH_INFO", "")
    EVENTS.append(("started", threading.get_ident(), path))


def _finished(sender: Any, **kwargs: Any) -> None:
    EVENTS.append(("finished", threading.get_ident(), ""))


class DemoConfig(AppConfig):
    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        signals.request_started.connect(_started, dispatch_uid="demo_started")
        signals.request_finished.connect(_finished, dispatch_uid="demo_finished")
