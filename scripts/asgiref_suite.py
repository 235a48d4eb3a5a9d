#!/usr/bin/env python
"""asgiref's own tests as a judge of asgibridge.sync (issue 9, item 3).

Downloads the asgiref sdist (default 3.13.0), makes a venv under the cache dir with
that asgiref, pytest, pytest-asyncio and asgibridge (editable, from this tree), runs
the chosen test files twice -- stock, and with ``asgiref.sync`` replaced by
asgibridge.sync's names (scripts/_suite/shim) -- and lists every test whose outcome
differs. Exit 1 if any differ, 2 if a run could not be made.

Some of asgiref's tests exercise its internals (private attributes, patched
helpers); those show up as differences too and are worth reading one by one.

Examples::

    .venv/bin/python scripts/asgiref_suite.py
    .venv/bin/python scripts/asgiref_suite.py --files tests/test_sync.py --fill-missing
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite import (
    DEFAULT_CACHE,
    SuiteError,
    child_env,
    differences,
    ensure_venv,
    fetch_sdist,
    format_totals,
    print_differences,
    totals,
)

DEFAULT_FILES = [
    "tests/test_sync.py",
    "tests/test_sync_contextvars.py",
    "tests/test_local.py",
    "tests/test_sync_thread_sensitive_context.py",
    "tests/test_sync_executor_context_scenario.py",
    "tests/test_wsgi.py",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--asgiref-version", default="3.13.0", help="default %(default)s")
    p.add_argument("--files", nargs="+", default=DEFAULT_FILES, help="test files in the sdist")
    p.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE / "asgiref")
    p.add_argument("--out", type=Path, help="logs and results (default: new dir under CACHE/runs)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per pytest run")
    p.add_argument(
        "--asgibridge-src", type=Path, help="a directory holding the asgibridge package to judge"
    )
    p.add_argument(
        "--fill-missing",
        action="store_true",
        help="diagnosis only: take names asgibridge.sync lacks from stock asgiref.sync, "
        "so that a test file that imports one still runs",
    )
    return p.parse_args(argv)


def read_junit(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        outcome, detail = "ok", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "fail", "error": "error", "skipped": "skip"}[child.tag]
                detail = (child.get("message") or "").strip().splitlines()[0:1]
                detail = detail[0][:300] if detail else ""
                break
        if tid in out and out[tid]["outcome"] != "ok":
            continue  # an error in teardown after a failure: keep the first
        out[tid] = {"outcome": outcome, **({"detail": detail} if detail else {})}
    return out


def run_side(
    python: str, src: Path, files: list[str], shim: bool, out: Path, timeout: float
) -> tuple[dict[str, dict[str, Any]], float, str]:
    # cwd is the tests dir, so that the tests import the installed asgiref and not the
    # sdist's copy of it (python -m pytest puts the cwd on sys.path).
    side = "asgibridge" if shim else "stock"
    xml, log = out / f"{side}.xml", out / f"{side}.log"
    cmd = [
        python, "-m", "pytest", "-p", "no:cacheprovider", "-o", "asyncio_mode=strict",
        "--rootdir", str(src), "-c", str(src / "setup.cfg"), f"--junitxml={xml}",
        "-q", "-rfE", "--continue-on-collection-errors", *(str(src / f) for f in files),
    ]  # fmt: skip
    started = time.monotonic()
    problem = ""
    with open(log, "w") as f:
        try:
            proc = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env(shim, out / "missing-names.txt"), cwd=src / "tests",
                timeout=timeout,
            )  # fmt: skip
            if proc.returncode not in (0, 1):
                problem = f"pytest exit {proc.returncode}, see {log}"
        except subprocess.TimeoutExpired:
            problem = f"timed out after {timeout:.0f}s, see {log}"
    wall = time.monotonic() - started
    if not xml.exists():
        return {}, wall, problem or f"no junit xml, see {log}"
    return read_junit(xml), wall, problem


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.asgibridge_src:
        os.environ["ASGIBRIDGE_SUITE_SRC"] = str(args.asgibridge_src.resolve())
    if args.fill_missing:
        os.environ["ASGIBRIDGE_SUITE_FILL"] = "1"
    try:
        pyver = subprocess.run(
            [args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            text=True, capture_output=True, check=True,
        ).stdout.strip()  # fmt: skip
        venv = args.cache / "venvs" / f"asgiref-{args.asgiref_version}-py{pyver}"
        print(f"== venv {venv}", flush=True)
        python = ensure_venv(
            args.python, venv,
            [f"asgiref=={args.asgiref_version}", "pytest", "pytest-asyncio", "packaging"],
        )  # fmt: skip
        src = fetch_sdist(python, "asgiref", args.asgiref_version, args.cache)
    except (SuiteError, subprocess.CalledProcessError) as exc:
        print(f"asgiref_suite: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.cache / "runs" / time.strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    check = subprocess.run(
        [python, "-c", "import asgiref.sync as s, asgibridge.sync as b; "
         "print(s.sync_to_async is b.sync_to_async, b.__file__)"],
        text=True, capture_output=True, env=child_env(True),
    )  # fmt: skip
    if not check.stdout.startswith("True "):
        print(f"asgiref_suite: the shim did not take effect: {check.stdout}{check.stderr}")
        return 2
    print(f"== asgiref {args.asgiref_version} tests, Python {pyver}; judging "
          f"{check.stdout.split(' ', 1)[1].strip()}; logs in {out}", flush=True)  # fmt: skip
    res, walls, problems = {}, {}, []
    for shim in (False, True):
        side = "asgibridge" if shim else "stock"
        res[side], walls[side], prob = run_side(python, src, args.files, shim, out, args.timeout)
        if prob:
            problems.append(f"{side}: {prob}")
        print(f"-- {side}: [{format_totals(totals(res[side]))}] {walls[side]:.1f}s", flush=True)
    diffs = differences(res["stock"], res["asgibridge"])
    missing_log = out / "missing-names.txt"
    names = sorted(set(missing_log.read_text().splitlines()) - {""}) if missing_log.exists() else []
    if names:
        print(f"names asgiref's tests import that asgibridge.sync lacks: {', '.join(names)}")
    (out / "summary.json").write_text(
        json.dumps({"differences": diffs, "problems": problems, "walls": walls}, indent=1)
    )
    for p in problems:
        print(f"run did not finish cleanly: {p}")
    if diffs:
        print(f"\n{len(diffs)} test(s) differ between stock asgiref and asgibridge:")
        print_differences(diffs)
        return 1
    if problems:
        return 2
    print("\nidentical: every test has the same outcome with stock asgiref and with asgibridge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
