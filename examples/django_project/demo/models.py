"""One model, to show the ORM on SQLite from sync and async views."""

from __future__ import annotations

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text
