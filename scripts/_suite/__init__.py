"""Shared parts of the suite runners (scripts/django_suite.py, scripts/asgiref_suite.py).

Each runner fetches a project's sdist, runs some of its own tests twice, once with
stock asgiref and once with ``asgiref.sync`` replaced by asgibridge's names (the
``shim/sitecustomize.py`` beside this file), and compares the two runs test by test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHIM_DIR = Path(__file__).resolve().parent / "shim"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asgibridge"

OUTCOMES = ("ok", "fail", "error", "skip", "xfail", "uxsuccess")
PASSING = {"ok", "skip", "xfail"}


class SuiteError(RuntimeError):
    """Something the runner needs (a download, a venv) could not be had."""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def dist_version(python: str, dist: str) -> str | None:
    """The installed version of ``dist`` for interpreter ``python``, or None."""
    code = (
        "import importlib.metadata as m, sys\n"
        f"try: print(m.version({dist!r}))\n"
        "except m.PackageNotFoundError: sys.exit(3)\n"
    )
    proc = run([python, "-c", code])
    return proc.stdout.strip() if proc.returncode == 0 else None


def fetch_sdist(python: str, project: str, version: str, cache: Path) -> Path:
    """Download ``project==version``'s sdist into ``cache/sdists`` (once) and unpack it.

    Returns the unpacked source directory. Uses ``pip download`` of ``python``.
    Raises SuiteError with pip's output when the download fails.
    """
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    stem = f"{project.lower()}-{version}"

    def find() -> Path | None:
        for p in sdists.iterdir():
            if p.name.lower() == stem + ".tar.gz":
                return p
        return None

    archive = find()
    if archive is None:
        proc = run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(sdists),
                f"{project}=={version}",
            ]
        )
        archive = find()
        if proc.returncode != 0 or archive is None:
            raise SuiteError(
                f"could not download the {project} {version} sdist with pip "
                f"(exit {proc.returncode}); check network access to the package index.\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
    src = cache / "src"
    target = src / archive.name[: -len(".tar.gz")]
    if not (target / ".unpacked").exists():
        if target.exists():
            shutil.rmtree(target)
        src.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(src, filter="data")
            else:  # pragma: no cover - Python without PEP 706
                tf.extractall(src)
        (target / ".unpacked").touch()
    return target


def ensure_venv(python: str, where: Path, requirements: Iterable[str]) -> str:
    """A venv at ``where`` with ``requirements`` and asgibridge (editable) installed.

    Made once; a marker file records what was installed. Returns its python.
    """
    reqs = sorted(requirements)
    marker = where / ".suite-requirements"
    want = "\n".join([*reqs, str(REPO)])
    vpy = where / "bin" / "python"
    if vpy.exists() and marker.exists() and marker.read_text() == want:
        return str(vpy)
    if where.exists():
        shutil.rmtree(where)
    proc = run([python, "-m", "venv", str(where)])
    if proc.returncode != 0:
        raise SuiteError(f"could not create a venv with {python}: {proc.stderr}")
    for cmd in (
        [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
        [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(REPO)],
    ):
        proc = run(cmd)
        if proc.returncode != 0:
            raise SuiteError(f"venv install failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    marker.write_text(want)
    return str(vpy)


def child_env(shim: bool, missing_log: Path | None = None) -> dict[str, str]:
    """Environment for a test child: the shim directory on PYTHONPATH, switched by ``shim``.

    ``ASGIBRIDGE_SUITE_HANDLER=1`` in this process's environment (django_suite.py's
    ``--handler``) is passed on to the asgibridge side only.
    """
    env = dict(os.environ)
    if not shim:
        env.pop("ASGIBRIDGE_SUITE_HANDLER", None)
    env.pop("PYTHONPATH", None)
    # ASGIBRIDGE_SUITE_SRC: a directory holding another asgibridge package (for example
    # an exported commit) that the children import instead of the installed one.
    other = os.environ.get("ASGIBRIDGE_SUITE_SRC")
    env["PYTHONPATH"] = os.pathsep.join([*([other] if other else []), str(SHIM_DIR)])
    env["ASGIBRIDGE_SUITE_SHIM"] = "1" if shim else "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if missing_log is not None:
        env["ASGIBRIDGE_SUITE_MISSING"] = str(missing_log)
    return env


def totals(results: Mapping[str, Mapping[str, Any]]) -> Counter[str]:
    c: Counter[str] = Counter(r["outcome"] for r in results.values())
    c["run"] = sum(c[o] for o in OUTCOMES if o != "skip")
    return c


def format_totals(c: Mapping[str, int]) -> str:
    parts = [f"run {c.get('run', 0)}"]
    parts += [f"{o} {c[o]}" for o in OUTCOMES if c.get(o)]
    return ", ".join(parts)


def differences(
    stock: Mapping[str, Mapping[str, Any]], bridge: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str, str, str]]:
    """(test id, stock outcome, asgibridge outcome, asgibridge detail) for each differing test."""
    out = []
    for tid in sorted(set(stock) | set(bridge)):
        a = stock.get(tid, {"outcome": "not run"})
        b = bridge.get(tid, {"outcome": "not run"})
        if a["outcome"] != b["outcome"]:
            out.append((tid, a["outcome"], b["outcome"], b.get("detail", a.get("detail", ""))))
    return out


def print_differences(diffs: list[tuple[str, str, str, str]], stream: Any = sys.stdout) -> None:
    for tid, a, b, detail in diffs:
        print(f"  {tid}: stock {a} -> asgibridge {b}", file=stream)
        if detail:
            print(f"      {detail}", file=stream)
    causes: Counter[str] = Counter()
    for _tid, _a, _b, detail in diffs:
        causes[detail.split(":", 1)[0] if detail else "(no detail)"] += 1
    if causes:
        print("  by exception type:", file=stream)
        for cause, n in causes.most_common():
            print(f"    {n:5d}  {cause}", file=stream)
