"""The Note table, and a demo user (alice / wonderland) to log in with."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import migrations, models


def create_demo_user(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("auth", "User")
    user_model.objects.create(username="alice", password=make_password("wonderland"))


class Migration(migrations.Migration):
    initial = True
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]  # noqa: RUF012
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="Note",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("text", models.CharField(max_length=200)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(create_demo_user, migrations.RunPython.noop),
    ]
