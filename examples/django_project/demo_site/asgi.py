"""ASGI entry point: Django's request cycle on asgibridge's scheduler.

Serve with ``uvicorn demo_site.asgi:application`` from ``examples/django_project``.
"""

from __future__ import annotations

import os

from asgibridge.django import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
application = get_asgi_application()
