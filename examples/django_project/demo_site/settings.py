"""Settings for the demo project: SQLite, sessions, auth, CSRF and two custom middleware.

``DEMO_DB`` names the SQLite file (default: ``db.sqlite3`` next to this project).
``DEMO_FAST_HASHER=1`` hashes passwords with MD5, for tests only: the default
PBKDF2 hasher takes about half a second per login, on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-not-secret-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "demo",
]

MIDDLEWARE = [
    # Async-capable: runs on the event loop under ASGI, inline under WSGI.
    "demo.middleware.ServedByMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A plain sync MiddlewareMixin.
    "demo.middleware.ThreadStampMiddleware",
]
if os.environ.get("DEMO_ASYNC_MIDDLEWARE", "1") == "0":
    MIDDLEWARE.remove("demo.middleware.ServedByMiddleware")

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("DEMO_FAST_HASHER") == "1":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"}},
}
