"""``python -m compat_matrix``: run the matrix, print progress, write the results.

Options:

* ``--quick``: one Python (the one running this) and a subset of cells in
  which every framework and every server appears at least once; results go
  to a temporary directory, not to the published files.
* ``--python 3.12`` (repeatable): only these versions. Default: every one of
  3.10-3.13 that is present.
* ``--only TEXT`` (repeatable): only cells whose id contains every TEXT.
* ``--no-peers``: skip the a2wsgi column.
* ``--jobs N``: cells run at once (default 2).
* ``--out DIR``: where results go (default: ``compat_matrix/`` for a full
  run, which also writes ``docs/compat.md``).
* ``--rerender RESULTS_JSON``: run nothing; classify the failures of an
  earlier run again with the current ``known`` tables and rewrite its
  reports (``docs/compat.md`` too when it is the published run).

Exit status: 0 when every failure is explained (``compat_matrix.known``),
1 when some failure is not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import known, report
from .apps import ASGI_FRAMEWORKS, WSGI_FRAMEWORKS
from .envs import PythonEnv, find_pythons, prepare
from .scenarios import SCENARIOS, Context, run_scenario
from .servers import ASGI_SERVERS, SERVERS, WSGI_SERVERS, ServerProcess, StartError

ROOT = Path(__file__).resolve().parent.parent
MAX_RESTARTS = 2  # per cell, when the server process dies mid-cell
CELL_BUDGET = 150.0  # seconds; scenarios not started by then are not run
STUCK_AFTER = 3  # scenarios in a row that time out before the rest of a cell is skipped

WSGI_BRIDGES = ["asgibridge-thread", "asgibridge-greenlet", "a2wsgi"]
ASGI_BRIDGES = ["asgibridge", "a2wsgi"]

# --quick: every framework and server at least once, both executors, and the
# Django-on-uvicorn cell users tried first.
QUICK = [
    ("django", "uvicorn-h11", "asgibridge-thread"),
    ("flask", "uvicorn-httptools", "asgibridge-greenlet"),
    ("pyramid", "uvicorn-uvloop", "asgibridge-thread"),
    ("bottle", "hypercorn-asyncio", "asgibridge-greenlet"),
    ("falcon", "hypercorn-asyncio-h2c", "asgibridge-thread"),
    ("plain", "hypercorn-trio", "asgibridge-thread"),
    ("flask", "hypercorn-trio-h2c", "asgibridge-greenlet"),
    ("django", "granian", "asgibridge-greenlet"),
    ("flask", "daphne", "asgibridge-thread"),
    ("starlette", "gunicorn-sync", "asgibridge"),
    ("fastapi", "gunicorn-gthread", "asgibridge"),
    ("quart", "waitress", "asgibridge"),
    ("litestar", "wsgiref", "asgibridge"),
    ("django-asgi", "werkzeug", "asgibridge"),
    ("fastapi", "uwsgi", "asgibridge"),
    ("flask", "uvicorn-h11", "a2wsgi"),
    ("fastapi", "gunicorn-gthread", "a2wsgi"),
]


@dataclass
class Cell:
    python: str
    framework: str
    server: str
    bridge: str
    results: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: float = 0.0
    restarts: int = 0
    timing: dict[str, float] = field(default_factory=dict)
    log_tail: str = ""
    log_markers: list[str] = field(default_factory=list)  # known symptoms seen in the log

    @property
    def id(self) -> str:
        return f"py{self.python}/{self.framework}/{self.server}/{self.bridge}"

    @property
    def direction(self) -> str:
        return "wsgi-app" if self.framework in WSGI_FRAMEWORKS else "asgi-app"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "python": self.python,
            "direction": self.direction,
            "framework": self.framework,
            "server": self.server,
            "bridge": self.bridge,
            "seconds": round(self.seconds, 2),
            "restarts": self.restarts,
            "timing": {k: round(v, 2) for k, v in self.timing.items()},
            "scenarios": self.results,
            **({"log_tail": self.log_tail} if self.log_tail else {}),
            **({"log_markers": self.log_markers} if self.log_markers else {}),
        }


def all_cells(pythons: list[str], peers: bool) -> list[Cell]:
    cells = []
    for py in pythons:
        for fw in WSGI_FRAMEWORKS:
            for srv in ASGI_SERVERS:
                for br in WSGI_BRIDGES:
                    if peers or not br.startswith("a2wsgi"):
                        cells.append(Cell(py, fw, srv.name, br))
        for fw in ASGI_FRAMEWORKS:
            for srv in WSGI_SERVERS:
                for br in ASGI_BRIDGES:
                    if peers or not br.startswith("a2wsgi"):
                        cells.append(Cell(py, fw, srv.name, br))
    return cells


def run_cell(cell: Cell, env: PythonEnv) -> None:
    server = SERVERS[cell.server]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="compat-cell-") as tmp:
        child_env = dict(os.environ)
        child_env.update(
            COMPAT_FRAMEWORK=cell.framework,
            COMPAT_BRIDGE=cell.bridge,
            COMPAT_TMP=tmp,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        child_env.pop("VIRTUAL_ENV", None)
        proc = ServerProcess(server, env.python, child_env, Path(tmp))
        todo = list(SCENARIOS)
        for name in todo:
            na = known.not_applicable(cell.bridge, cell.framework, cell.server, name)
            if na is not None:
                cell.results[name] = {"status": "n/a", "detail": na.text, "link": na.link}
        base = ""
        stuck = 0
        try:
            for name in todo:
                if name in cell.results:  # n/a
                    continue
                if time.monotonic() - started > CELL_BUDGET:
                    cell.results[name] = {"status": "fail", "detail": "not run: cell time budget"}
                    continue
                if not proc.alive():
                    if base:
                        cell.restarts += 1
                    if cell.restarts > MAX_RESTARTS:
                        cell.results[name] = {"status": "fail", "detail": "not run: server died"}
                        continue
                    try:
                        t = time.monotonic()
                        base = proc.start()
                        cell.timing["start"] = cell.timing.get("start", 0.0) + time.monotonic() - t
                    except StartError as exc:
                        # Not answering at all: the rest of the cell would only wait again.
                        for rest in todo[todo.index(name) :]:
                            if rest not in cell.results:
                                cell.results[rest] = {"status": "fail", "detail": f"not run: {exc}"}
                        break
                if stuck >= STUCK_AFTER:
                    cell.results[name] = {
                        "status": "fail",
                        "detail": f"not run: {stuck} scenarios in a row timed out",
                    }
                    continue
                t = time.monotonic()
                ok, detail = run_scenario(
                    name, Context(base, server.http2, cell.framework, server.keepalive)
                )
                cell.timing[name] = time.monotonic() - t
                stuck = stuck + 1 if "Timeout" in detail else 0
                if not ok and not proc.healthy():
                    # It died, or is dying: say so, and start a fresh one for the next scenario.
                    proc.stop()
                    code = proc.proc.returncode if proc.proc else "?"
                    detail += f" (the server stopped answering; exit code {code})"
                cell.results[name] = {"status": "pass" if ok else "fail", "detail": detail}
        finally:
            t = time.monotonic()
            proc.stop()
            cell.timing["stop"] = time.monotonic() - t
            log = proc.log_tail(size=1 << 20)
            cell.log_markers = sorted({r.log for r in known.EXPLAINED if r.log and r.log in log})
            if any(r["status"] == "fail" for r in cell.results.values()):
                cell.log_tail = log[-2000:]
    cell.results = {n: cell.results[n] for n in todo if n in cell.results}
    _classify(cell, log)
    cell.seconds = time.monotonic() - started


def _classify(cell: Cell, log: str) -> None:
    for name, res in cell.results.items():
        reason = known.explain(cell.bridge, cell.framework, cell.server, name, log)
        if reason is None:
            continue
        if res["status"] == "fail":
            res["measured"] = res.get("detail", "")
            res.update(status=reason.kind, detail=reason.text, link=reason.link)
        elif res["status"] == "pass" and not reason.log and not reason.flaky:
            res["stale"] = f"a known {reason.kind} entry matches, but this passed: {reason.text}"


def _summary(cell: Cell) -> str:
    counts: dict[str, int] = {}
    for res in cell.results.values():
        counts[res["status"]] = counts.get(res["status"], 0) + 1
    order = ["pass", "fail", "bug", "limitation", "n/a"]
    text = " ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
    bad = [n for n, r in cell.results.items() if r["status"] in ("fail", "bug")]
    return text + (f"  [{', '.join(bad)}]" if bad else "")


def rerender(path: Path, out: Path | None) -> int:
    """Reclassify the failures of an earlier run and write its reports again."""
    data = report.load(path)
    for c in data["cells"]:
        log = c.get("log_tail", "") + "\n".join(c.get("log_markers", []))
        for name, res in c["scenarios"].items():
            if res["status"] == "n/a":
                continue
            reason = known.explain(c["bridge"], c["framework"], c["server"], name, log)
            res.pop("stale", None)
            if res["status"] == "pass":
                if reason is not None and not reason.log and not reason.flaky:
                    res["stale"] = (
                        f"a known {reason.kind} entry matches, but this passed: {reason.text}"
                    )
                continue
            measured = res.get("measured", res.get("detail", ""))
            if reason is None:  # no reason (any more): an unexplained failure
                res.clear()
                res.update(status="fail", detail=measured)
            else:
                res.update(
                    status=reason.kind, detail=reason.text, link=reason.link, measured=measured
                )
    pythons = {p: (v["version"], v["packages"]) for p, v in data["pythons"].items()}
    out = out or path.parent
    out.mkdir(parents=True, exist_ok=True)
    docs = ROOT / "docs" / "compat.md" if out.resolve() == (ROOT / "compat_matrix") else None
    new = report.write(
        data["cells"],
        pythons,
        data["wall_seconds"],
        out,
        docs,
        quick=data["quick"],
        generated=data["generated"],
    )
    print(f"== rewrote {out / 'RESULTS.md'}: {report.totals_line(new['totals'])}")
    return 1 if new["totals_asgibridge"].get("fail", 0) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compat_matrix", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one Python, a covering subset")
    ap.add_argument("--python", action="append", help="a Python version, e.g. 3.12")
    ap.add_argument("--only", action="append", default=[], help="cells whose id has this text")
    ap.add_argument("--no-peers", action="store_true", help="skip the a2wsgi column")
    ap.add_argument("--jobs", type=int, default=2, help="cells run at once (default 2)")
    ap.add_argument("--out", type=Path, help="directory for RESULTS.md and results.json")
    ap.add_argument(
        "--rerender",
        type=Path,
        metavar="RESULTS_JSON",
        help="do not run: classify the failures in RESULTS_JSON again with the current "
        "known reasons and write the reports from it",
    )
    args = ap.parse_args(argv)
    if args.rerender:
        return rerender(args.rerender, args.out)

    t0 = time.monotonic()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    wanted = args.python or ([here] if args.quick else None)
    pythons = find_pythons(wanted)
    if not pythons:
        print(f"no Python found among {wanted}", file=sys.stderr)
        return 2
    envs: dict[str, PythonEnv] = {}
    for label, exe in pythons.items():
        envs[label] = prepare(label, exe)
        print(f"== Python {envs[label].full_version}: {envs[label].python}", flush=True)

    if args.quick:
        cells = [Cell(py, fw, srv, br) for py in envs for fw, srv, br in QUICK]
        if args.no_peers:
            cells = [c for c in cells if c.bridge != "a2wsgi"]
    else:
        cells = all_cells(list(envs), peers=not args.no_peers)
    cells = [c for c in cells if all(o in c.id for o in args.only)]
    total = len(cells)
    print(f"== {total} cells, {args.jobs} at a time", flush=True)

    done = [0]
    lock = threading.Lock()

    def work(cell: Cell) -> None:
        try:
            run_cell(cell, envs[cell.python])
        except Exception as exc:  # the harness itself broke: say so in the cell
            cell.results["harness"] = {"status": "fail", "detail": f"{type(exc).__name__}: {exc}"}
        with lock:
            done[0] += 1
            print(
                f"[{done[0]:>3}/{total}] {cell.id:<58} {cell.seconds:5.1f}s  {_summary(cell)}",
                flush=True,
            )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(work, cells))

    wall = time.monotonic() - t0
    out = args.out
    if out is None:
        out = (
            Path(tempfile.gettempdir()) / "asgibridge-compat-quick"
            if args.quick
            else ROOT / "compat_matrix"
        )
    out.mkdir(parents=True, exist_ok=True)
    docs = None if (args.quick or args.only or args.out) else ROOT / "docs" / "compat.md"
    data = report.write(
        [c.to_json() for c in cells],
        {label: (e.full_version, e.versions) for label, e in envs.items()},
        wall,
        out,
        docs,
        quick=args.quick,
    )
    # Unexplained failures of the peer's cells are published, not ours to fix.
    unexplained = data["totals_asgibridge"].get("fail", 0)
    print(f"== done in {wall:.0f}s: {report.totals_line(data['totals'])}")
    print(
        f"== wrote {out / 'RESULTS.md'} and {out / 'results.json'}"
        + (f" and {docs}" if docs else "")
    )
    for stale in data["stale"]:
        print(f"   stale known entry: {stale}")
    return 1 if unexplained else 0
