"""Python interpreters and the virtual environments the servers run in.

Each Python version gets its own venv under ``~/.cache/asgibridge/compat``
(or ``$ASGIBRIDGE_COMPAT_CACHE``), named after the version and a hash of
:data:`REQUIREMENTS`, so a changed requirement list makes a fresh one. The
venv holds the frameworks and servers only: asgibridge and the scenario apps
are imported from this checkout through ``PYTHONPATH``, so the matrix always
tests the working tree. The interpreter running the harness is used as it
is when it already has every requirement (``pip install -e '.[compat]'``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["REQUIREMENTS", "PythonEnv", "find_pythons", "prepare"]

# Mirrored by the ``compat`` extra in pyproject.toml.
REQUIREMENTS = [
    "anyio>=4.4",
    "greenlet>=3.0",
    "httpx>=0.27",
    "h2>=4.1",
    "flask>=3.0",
    "django>=4.2",
    "pyramid>=2.0",
    "bottle>=0.12",
    "falcon>=3.1",
    "starlette>=0.40",
    "fastapi>=0.110",
    "python-multipart>=0.0.9",
    "itsdangerous>=2.1",
    "quart>=0.19",
    "litestar>=2.0",
    "cryptography>=42",
    "uvicorn>=0.30",
    "httptools>=0.6",
    "uvloop>=0.19",
    "hypercorn>=0.17",
    "trio>=0.25",
    "granian>=1.6",
    "daphne>=4.1",
    "gunicorn>=22",
    "waitress>=3.0",
    "werkzeug>=3.0",
    "pyuwsgi>=2.0.28",
    "a2wsgi>=1.10",
]

# Distributions whose versions every result records.
RECORDED = [
    "flask", "django", "pyramid", "bottle", "falcon", "starlette", "fastapi", "quart",
    "litestar", "uvicorn", "httptools", "uvloop", "hypercorn", "h2", "trio", "granian",
    "daphne", "gunicorn", "waitress", "werkzeug", "pyuwsgi", "a2wsgi", "httpx", "anyio",
    "greenlet",
]  # fmt: skip

VERSIONS = ("3.10", "3.11", "3.12", "3.13")


@dataclass
class PythonEnv:
    """A Python version ready to run servers: its interpreter and recorded versions."""

    label: str  # "3.11"
    python: str  # the venv's interpreter
    full_version: str
    versions: dict[str, str]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()


def _works(exe: str) -> bool:
    try:
        return (
            subprocess.run([exe, "-c", "import sys"], capture_output=True, timeout=30).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_pythons(wanted: list[str] | None = None) -> dict[str, str]:
    """``{"3.10": path, ...}`` for each version present (on PATH or under pyenv)."""
    found: dict[str, str] = {}
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for ver in wanted or list(VERSIONS):
        cands = []
        if f"{sys.version_info[0]}.{sys.version_info[1]}" == ver:
            cands.append(sys.executable)
        which = shutil.which(f"python{ver}")
        if which:
            cands.append(which)
        cands += sorted(glob.glob(f"{root}/versions/{ver}.*/bin/python{ver}"), reverse=True)
        for cand in cands:
            if _works(cand):
                found[ver] = cand
                break
    return found


def _has_all() -> bool:
    for req in REQUIREMENTS:
        try:
            metadata.version(_name(req))
        except metadata.PackageNotFoundError:
            return False
    return True


def _cache_root() -> Path:
    default = Path.home() / ".cache" / "asgibridge" / "compat"
    return Path(os.environ.get("ASGIBRIDGE_COMPAT_CACHE", default))


def _versions(python: str) -> tuple[str, dict[str, str]]:
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        f"for n in {RECORDED!r}:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: out[n] = 'missing'\n"
        "print(json.dumps([sys.version.split()[0], out]))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    full, versions = json.loads(done.stdout)
    return full, versions


def prepare(label: str, interpreter: str, log: bool = True) -> PythonEnv:
    """A ready environment for ``interpreter``: the current one, or a cached venv."""
    if os.path.realpath(interpreter) == os.path.realpath(sys.executable) and _has_all():
        python = sys.executable
    else:
        key = hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:12]
        venv = _cache_root() / f"py{label}-{key}"
        python = str(venv / "bin" / "python")
        if not (venv / ".complete").exists():
            if log:
                print(f"== creating {venv} (Python {label}) ...", flush=True)
            shutil.rmtree(venv, ignore_errors=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=300)
            pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            with open(venv / "pip.log", "wb") as out:
                for args in (["--upgrade", "pip"], REQUIREMENTS):
                    done = subprocess.run(
                        [*pip, *args], stdout=out, stderr=subprocess.STDOUT, timeout=1800
                    )
                    if done.returncode != 0:
                        raise RuntimeError(
                            f"pip install into {venv} failed (exit {done.returncode}); "
                            f"see {venv / 'pip.log'}"
                        )
            (venv / ".complete").write_text("ok\n")
    full, versions = _versions(python)
    return PythonEnv(label, python, full, versions)
