"""WSGI entry point, and the same app on an ASGI server through asgibridge.WsgiToAsgi.

``gunicorn demo_site.wsgi:application`` serves it on a WSGI server;
``uvicorn demo_site.wsgi:asgi_application`` serves it through ``WsgiToAsgi``.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from asgibridge import WsgiToAsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
application = get_wsgi_application()
asgi_application = WsgiToAsgi(application)
