"""Django's own tests judge asgibridge.sync: the CI subset of ``scripts/django_suite.py``.

The runner downloads the sdist of the installed Django (cached outside the
repository, under ``~/.cache/asgibridge/django``), and runs the ``--quick`` modules
of Django's ``tests/runtests.py`` twice: with stock asgiref, and with ``asgiref.sync``
replaced by asgibridge.sync's names. Every test must have the same outcome in both
runs. This covers U1-U8 as Django uses them: ``@async_unsafe`` must see no running
loop in sync code (U7), ``Local`` values such as the active translation and the
database connections must cross each hop as asgiref carries them (U8).

The full run (nine modules) is on demand: ``python scripts/django_suite.py``; see
docs/testing-against-frameworks.md. A failed download fails this test (it never
skips): the judge needs Django's source, and the ``test`` extra installs Django.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

RUNNER = ROOT / "scripts" / "django_suite.py"


@pytest.mark.timeout(900)
def test_django_own_tests_quick_subset_identical_to_stock_asgiref(tmp_path: Path) -> None:
    if importlib.util.find_spec("django") is None:
        pytest.fail("Django is not installed; the 'test' extra installs it: pip install -e .[test]")
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--quick", "--timeout", "300", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=850,
        cwd=ROOT,
    )
    report = f"{proc.stdout}\n{proc.stderr}"
    if proc.returncode == 2:
        pytest.fail(f"the Django suite could not run (exit 2; see below):\n{report[-6000:]}")
    assert proc.returncode == 0, (
        f"Django's own tests differ between stock asgiref and asgibridge "
        f"(exit {proc.returncode}); logs in {tmp_path}:\n{report[-12000:]}"
    )
    # The run must have judged something: the table lists every module on both sides.
    assert "identical: every test has the same outcome" in proc.stdout
    for module in ("asgi", "async", "handlers"):
        assert f"-- {module}: stock [run " in proc.stdout, proc.stdout
