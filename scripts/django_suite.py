#!/usr/bin/env python
"""Django's own tests as the judge of asgibridge's asgiref compatibility (issue 9, item 3).

Downloads the Django sdist that matches the installed Django, and runs its
``tests/runtests.py`` for each test module twice: once with stock asgiref, once with
``asgiref.sync`` replaced by a module holding asgibridge.sync's names (installed by
``scripts/_suite/shim/sitecustomize.py`` at interpreter start; nothing in
site-packages is touched). It prints the totals of both runs per module, every test
whose outcome differs, and exits 1 if any differ (2 if a run could not be made).

Examples::

    .venv/bin/python scripts/django_suite.py                 # the issue's nine modules
    .venv/bin/python scripts/django_suite.py --quick         # the CI subset
    .venv/bin/python scripts/django_suite.py --modules asgi handlers
    .venv/bin/python scripts/django_suite.py --django-version 4.2.27 --python python3.11

With ``--django-version`` (or ``--python``) the runs happen in a venv made under the
cache directory with that Django, asgiref and asgibridge (editable, from this tree).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite import (
    DEFAULT_CACHE,
    SuiteError,
    child_env,
    differences,
    dist_version,
    ensure_venv,
    fetch_sdist,
    format_totals,
    print_differences,
    totals,
)

RUNNER = Path(__file__).resolve().parent / "_suite" / "django_runner.py"
FULL_MODULES = [
    "asgi",
    "async",
    "handlers",
    "sessions_tests",
    "auth_tests",
    "i18n",
    "middleware",
    "test_client",
    "view_tests",
]
# The CI subset: the async core, plus the modules that drive sessions, middleware and
# the test client through sync_to_async; about 30 s for both runs on a quiet 2-core host.
QUICK_MODULES = ["asgi", "async", "handlers", "middleware", "sessions_tests", "test_client"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--modules",
        nargs="+",
        help=f"Django test modules or labels (default: {' '.join(FULL_MODULES)})",
    )
    p.add_argument("--quick", action="store_true", help=f"the CI subset: {' '.join(QUICK_MODULES)}")
    p.add_argument(
        "--django-version",
        help="run against this Django (exact, or a series such as 4.2 or 6) in a venv under "
        "the cache dir",
    )
    p.add_argument(
        "--asgiref-version", help="asgiref for that venv (default: newest the index has)"
    )
    p.add_argument(
        "--python",
        help="interpreter for the runs (default: this one, or python3 with --django-version)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE / "django",
        help="cache dir (default %(default)s)",
    )
    p.add_argument(
        "--out", type=Path, help="where logs and results go (default: a new dir under CACHE/runs)"
    )
    p.add_argument("--parallel", type=int, default=1, help="runtests --parallel (default 1)")
    p.add_argument(
        "--timeout",
        type=float,
        default=1200,
        help="seconds per module run before its stacks are dumped and it is ended",
    )
    p.add_argument(
        "--jobs",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: run stock and asgibridge at the same time",
    )
    p.add_argument(
        "--reuse-stock",
        action="store_true",
        help="reuse stock results cached by an earlier run with the same Django/Python/asgiref",
    )
    p.add_argument(
        "--show-slower",
        action="store_true",
        help="list the tests that took at least 50 ms longer with asgibridge",
    )
    p.add_argument(
        "--handler",
        action="store_true",
        help="on the asgibridge side, also replace Django's ASGIHandler with "
        "asgibridge.django.ASGIHandler (fewer hand-offs per request)",
    )
    p.add_argument(
        "--asgibridge-src",
        type=Path,
        help="a directory holding the asgibridge package to judge (default: the installed one)",
    )
    p.add_argument(
        "--only", choices=("stock", "asgibridge"), help="run one side only (no comparison)"
    )
    p.add_argument(
        "--no-confirm",
        action="store_true",
        help="do not rerun differing tests to weed out flaky ones",
    )
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[str, str, Path]:
    """(python, django version, unpacked Django source dir)."""
    python = args.python or sys.executable
    if args.django_version or args.python:
        python = args.python or "python3"
        want = args.django_version or dist_version(python, "django")
        if want is None:
            raise SuiteError(f"{python} has no Django; pass --django-version")
        pyver = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
        if dist_version(python, "django") != want:
            # "4.2" or "6" mean the newest release of that series; "4.2.27" is exact.
            parts = want.split(".")
            if len(parts) >= 3:
                spec = f"django=={want}"
            else:
                upper = [*parts[:-1], str(int(parts[-1]) + 1)]
                spec = f"django>={want},<{'.'.join(upper)}"
            reqs = [
                spec,
                f"asgiref=={args.asgiref_version}" if args.asgiref_version else "asgiref",
            ]
            print(
                f"== venv for Django {want} on Python {pyver} (first time: a minute or two)",
                flush=True,
            )
            python = ensure_venv(python, args.cache / "venvs" / f"django-{want}-py{pyver}", reqs)
    version = dist_version(python, "django")
    if version is None:
        raise SuiteError(
            f"{python} has no Django installed; pip install django (the 'test' extra has it)"
        )
    print(f"== Django {version} sdist (cache {args.cache})", flush=True)
    src = fetch_sdist(python, "django", version, args.cache)
    if not (src / "tests" / "runtests.py").exists():
        raise SuiteError(f"{src} has no tests/runtests.py")
    return python, version, src


def run_module(
    python: str,
    src: Path,
    label: list[str],
    shim: bool,
    out: Path,
    name: str,
    args: argparse.Namespace,
) -> subprocess.Popen[bytes]:
    results = out / f"{name}.{'asgibridge' if shim else 'stock'}.json"
    log = out / f"{name}.{'asgibridge' if shim else 'stock'}.log"
    results.unlink(missing_ok=True)
    cmd = [
        python,
        str(RUNNER),
        str(results),
        str(args.timeout),
        str(src / "tests" / "runtests.py"),
        "--settings=test_sqlite",
        f"--parallel={args.parallel}",
        "-v",
        "2",
        "--noinput",
        *label,
    ]
    env = child_env(shim, out / "missing-names.txt")
    f = open(log, "wb")
    # A session of its own, so that a hung run can be ended with its parallel workers.
    proc = subprocess.Popen(
        cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=src / "tests", start_new_session=True
    )
    proc._log = f  # type: ignore[attr-defined]
    proc._results = results  # type: ignore[attr-defined]
    proc._started = time.monotonic()  # type: ignore[attr-defined]
    return proc


def wait_module(proc: subprocess.Popen[bytes], timeout: float) -> tuple[dict[str, Any], float, str]:
    """(results, wall seconds, problem or '')."""
    problem = ""
    try:
        rc = proc.wait(timeout + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
        problem = f"killed after {timeout + 60:.0f}s"
    wall = time.monotonic() - proc._started  # type: ignore[attr-defined]
    proc._log.close()  # type: ignore[attr-defined]
    path: Path = proc._results  # type: ignore[attr-defined]
    if path.exists():
        return json.loads(path.read_text()), wall, problem
    log = path.with_suffix(".log")
    if not problem and log.exists() and b"Timeout (" in log.read_bytes()[:200]:
        problem = f"timed out after --timeout {timeout:g}s; every thread's stack is in {log}"
    return {}, wall, problem or f"no results (exit {rc}; crashed? see {log})"


def slowest_changes(
    stock: dict[str, dict[str, Any]], bridge: dict[str, dict[str, Any]], n: int = 5
) -> list[tuple[str, float, float]]:
    """The n tests whose time grew most under asgibridge (>= 50 ms), as (id, stock, bridge)."""
    rows = []
    for tid, b in bridge.items():
        a = stock.get(tid)
        if a and "time" in a and "time" in b and b["time"] - a["time"] >= 0.05:
            rows.append((tid, a["time"], b["time"]))
    rows.sort(key=lambda r: r[1] - r[2])
    return rows[:n]


def label_of(tid: str) -> str:
    """A runtests label for a test id; 'setUpClass (mod.Class)' -> 'mod.Class'."""
    if " (" in tid and tid.endswith(")"):
        return tid[tid.index(" (") + 2 : -1]
    return tid.split(" ", 1)[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modules = args.modules or (QUICK_MODULES if args.quick else FULL_MODULES)
    if args.asgibridge_src:
        os.environ["ASGIBRIDGE_SUITE_SRC"] = str(args.asgibridge_src.resolve())
    if args.handler:
        os.environ["ASGIBRIDGE_SUITE_HANDLER"] = "1"
    try:
        python, version, src = prepare(args)
    except (SuiteError, subprocess.CalledProcessError) as exc:
        print(f"django_suite: {exc}", file=sys.stderr)
        return 2
    pyver = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], text=True, capture_output=True
    ).stdout.strip()
    asgiref_ver = dist_version(python, "asgiref")
    out = args.out or args.cache / "runs" / time.strftime(f"{version}-py{pyver}-%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    stock_cache = (
        args.cache
        / "stock-results"
        / f"django-{version}-py{pyver}-asgiref-{asgiref_ver}-p{args.parallel}"
    )
    print(f"== Django {version}, Python {pyver}, asgiref {asgiref_ver}; logs in {out}", flush=True)
    check = subprocess.run(
        [
            python,
            "-c",
            "import asgiref.sync as s, asgibridge.sync as b; print(s.sync_to_async is b.sync_to_async, b.__file__)",
        ],
        text=True,
        capture_output=True,
        env=child_env(True),
    )
    if not check.stdout.startswith("True "):
        print(
            f"django_suite: the asgiref.sync shim did not take effect: {check.stdout}{check.stderr}",
            file=sys.stderr,
        )
        return 2
    judged = check.stdout.split(" ", 1)[1].strip()
    extra = " with asgibridge.django.ASGIHandler as Django's ASGIHandler" if args.handler else ""
    print(f"== judging {judged}{extra}", flush=True)

    sides = [side for side in ("stock", "asgibridge") if args.only in (None, side)]
    summary: dict[str, Any] = {
        "django": version,
        "python": pyver,
        "asgiref": asgiref_ver,
        "modules": {},
    }
    all_diffs: list[tuple[str, str, str, str]] = []
    problems: list[str] = []
    header = (
        f"{'module':22} {'side':11} {'run':>5} {'fail':>5} {'error':>5} {'skip':>5} {'wall s':>7}"
    )
    rows = [header]
    for mod in modules:
        name = mod.replace("/", "_")
        res: dict[str, dict[str, Any]] = {}
        walls: dict[str, float] = {}
        pending = {}
        for side in sides:
            cached = stock_cache / f"{name}.json"
            if side == "stock" and args.reuse_stock and cached.exists():
                data = json.loads(cached.read_text())
                res[side], walls[side] = data["results"], data["wall"]
                continue
            proc = run_module(python, src, [mod], side == "asgibridge", out, name, args)
            if args.jobs == 1:
                res[side], walls[side], prob = wait_module(proc, args.timeout)
                if prob:
                    problems.append(f"{mod} ({side}): {prob}")
            else:
                pending[side] = proc
        for side, proc in pending.items():
            res[side], walls[side], prob = wait_module(proc, args.timeout)
            if prob:
                problems.append(f"{mod} ({side}): {prob}")
        if "stock" in walls and res.get("stock") and not args.only:
            stock_cache.mkdir(parents=True, exist_ok=True)
            (stock_cache / f"{name}.json").write_text(
                json.dumps({"results": res["stock"], "wall": walls["stock"]})
            )
        summary["modules"][mod] = {}
        for side in sides:
            t = totals(res[side])
            summary["modules"][mod][side] = {**t, "wall": round(walls[side], 1)}
            rows.append(
                f"{mod:22} {side:11} {t['run']:5d} {t['fail'] + t['uxsuccess']:5d} {t['error']:5d} "
                f"{t['skip']:5d} {walls[side]:7.1f}"
            )
        if len(sides) == 2:
            slower = slowest_changes(res["stock"], res["asgibridge"])
            if slower:
                summary["modules"][mod]["slower"] = slower
            diffs = differences(res["stock"], res["asgibridge"])
            all_diffs += diffs
            print(
                f"-- {mod}: stock [{format_totals(totals(res['stock']))}] {walls['stock']:.1f}s; "
                f"asgibridge [{format_totals(totals(res['asgibridge']))}] {walls['asgibridge']:.1f}s; "
                f"{len(diffs)} differ",
                flush=True,
            )
        else:
            side = sides[0]
            print(
                f"-- {mod}: {side} [{format_totals(totals(res[side]))}] {walls[side]:.1f}s",
                flush=True,
            )

    flaky: list[tuple[str, str, str, str]] = []
    if all_diffs and not args.no_confirm and len(all_diffs) <= 300:
        labels = sorted({label_of(d[0]) for d in all_diffs})
        print(f"== rerunning {len(labels)} differing test(s) on both sides to confirm", flush=True)
        again: dict[str, dict[str, Any]] = {}
        for side in sides:
            proc = run_module(python, src, labels, side == "asgibridge", out, "confirm", args)
            again[side], _w, prob = wait_module(proc, args.timeout)
            if prob:
                problems.append(f"confirm ({side}): {prob}")
        confirmed_ids = {d[0] for d in differences(again["stock"], again["asgibridge"])}
        # A test counts as flaky only if both reruns have it and they agree.
        flaky = [
            d
            for d in all_diffs
            if d[0] not in confirmed_ids and d[0] in again["stock"] and d[0] in again["asgibridge"]
        ]
        all_diffs = [d for d in all_diffs if d not in flaky]

    missing_log = out / "missing-names.txt"
    missing = sorted(set(missing_log.read_text().split())) if missing_log.exists() else []
    print()
    print("\n".join(rows))
    slow = [(m, r) for m, d in summary["modules"].items() for r in d.get("slower", [])]
    if slow and args.show_slower:
        print(
            "\ntests that took at least 50 ms longer with asgibridge (top 5 per module; the "
            "two sides run at different times, so on a busy host this is mostly load):"
        )
        for _m, (tid, a, b) in slow:
            print(f"  {tid}: stock {a * 1000:.0f} ms, asgibridge {b * 1000:.0f} ms")
    if missing:
        print(
            f"\nnames imported from asgiref.sync that asgibridge.sync lacks: {', '.join(missing)}"
        )
    if flaky:
        print(f"\n{len(flaky)} difference(s) did not reproduce on a rerun (flaky, not counted):")
        print_differences(flaky)
    summary["differences"] = [list(d) for d in all_diffs]
    summary["flaky"] = [list(d) for d in flaky]
    summary["problems"] = problems
    summary["missing_names"] = missing
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if problems:
        print("\nruns that did not finish cleanly:")
        for p in problems:
            print(f"  {p}")
    if len(sides) < 2:
        return 2 if problems else 0
    if all_diffs:
        print(f"\n{len(all_diffs)} test(s) differ between stock asgiref and asgibridge:")
        print_differences(all_diffs)
        return 1
    if problems:
        return 2
    print("\nidentical: every test has the same outcome with stock asgiref and with asgibridge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
