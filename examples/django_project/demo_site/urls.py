"""URLs of the demo project."""

from __future__ import annotations

from demo import views
from django.urls import path

urlpatterns = [
    path("sync/", views.sync_view),
    path("async/", views.async_view),
    path("notes/", views.notes),
    path("anotes/", views.anotes),
    path("csrf/", views.csrf),
    path("login/", views.login_view),
    path("whoami/", views.whoami),
    path("session/", views.session_counter),
    path("stream/", views.stream),
    path("cookies/", views.cookies),
    path("boom/", views.boom),
    path("events/", views.events),
]
