"""Where a request's CPU goes, end to end: the interpreter, the kernel, the server's own code.

Run with ``python -m benchmarks.cpu_split`` (``--only "uvicorn httptools"`` and
friends pick groups of :mod:`benchmarks.granian_e2e`; ``--contender NAME``
picks rows; ``--seconds`` is the sampled window).

Each contender of a group is served alone, as ``granian_e2e`` serves it (one
worker on 127.0.0.1), warmed with ``wrk -t1 -c32`` for 2 s, and then sampled
with ``perf record -e cpu-clock`` (a software clock: it works where the
hardware counters do not) while ``wrk`` drives it for ``--seconds``. The
samples are split by the shared object they fell in and reported as µs of
CPU per request: ``libpython`` (the interpreter running Python code),
``kernel`` (system calls, context switches, the network stack), the server's
own compiled code (granian's Rust, httptools' parser), and the rest. The last
column is each bridge's libpython time over its floor's (the floor
``granian_e2e`` compares it with), measured in the same run.

Why it exists (issue 14): end to end, the bridges cost several times what
their in-process instruction counts suggest. This split showed that the
difference is still mostly the interpreter running the bridges' extra
instructions, only more slowly among the server's threads (1.2-2
instructions per ns), with the kernel's context switches on top on granian.

Needs ``wrk`` and ``perf`` on PATH (``apt-get install -y wrk linux-perf``) and
permission to sample the server (root, or ``perf_event_paranoid`` <= 1). Only
loopback traffic.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import _harness
from .granian_e2e import CONTENDERS, FLOORS, ROOT, Server

_BUCKETS = ("libpython", "kernel", "server", "other")


def bucket(dso: str) -> str:
    """Which column a shared object's samples go to."""
    if dso.startswith("libpython") or dso == "python3" or dso.startswith("python3."):
        return "libpython"
    if dso.startswith("[kernel"):
        return "kernel"
    if dso.startswith(("_granian", "parser.", "url_parser.", "httptools")):
        return "server"
    return "other"


def sample(server: Server, seconds: float, connections: int, data: Path) -> dict[str, float]:
    """Sample ``server`` under ``wrk``: µs of CPU per request, per column and in all."""
    pid = server.proc.pid
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    pids = ",".join([str(pid), *children])  # granian serves from a child process
    rec = subprocess.Popen(
        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-p", pids, "-o", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rps, _non2xx, _errors = _harness.wrk(server.port, seconds, connections)
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(30)
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--sort", "dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Event count \(approx\.\): (\d+)", report)
    if found is None:
        raise RuntimeError(f"perf recorded nothing for pid {pid}: is perf allowed to sample?")
    requests = max(rps * seconds, 1.0)
    total_us = int(found.group(1)) / 1000 / requests  # cpu-clock counts nanoseconds
    out = dict.fromkeys(_BUCKETS, 0.0)
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if m:
            out[bucket(m.group(2))] += float(m.group(1)) / 100 * total_us
    out["total"] = total_us
    out["rps"] = rps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="only these groups (uvicorn h11, ...)")
    parser.add_argument("--contender", action="append", help="only these contenders")
    parser.add_argument("--seconds", type=float, default=4.0, help="sampled wrk window")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "perf"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install -y wrk linux-perf")
    only = args.only or ["granian wsgi", "uvicorn httptools"]
    log = Path(tempfile.gettempdir()) / "asgibridge-cpu-split.log"
    log.write_bytes(b"")
    for group in only:
        keys = [k for k in CONTENDERS if k[0] == group]
        if not keys:
            sys.exit(f"no group {group!r}: pick one of {sorted({k[0] for k in CONTENDERS})}")
        if args.contender:
            wanted = set(args.contender)
            wanted |= {FLOORS[k] for k in keys if k[1] in wanted and k in FLOORS}
            keys = [k for k in keys if k[1] in wanted]
        rows: dict[str, dict[str, float]] = {}
        for key in keys:
            server_name, target = CONTENDERS[key]
            server = Server(server_name, target, log, "auto", ROOT)
            try:
                server.ready()
                _harness.wrk(server.port, 2.0, args.connections)  # warm-up
                with tempfile.TemporaryDirectory() as tmp:
                    rows[key[1]] = sample(
                        server, args.seconds, args.connections, Path(tmp) / "perf.data"
                    )
            finally:
                server.stop()
        print(f"\n{group}: perf record -e cpu-clock, wrk -t1 -c{args.connections}, "
              f"{args.seconds:g} s; µs of CPU per request")  # fmt: skip
        print("| contender | req/s | total | libpython | kernel | server | other | "
              "libpython / its floor's |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, r in rows.items():
            floor = FLOORS.get((group, name), "")
            base = rows.get(floor, {}).get("libpython")
            ratio = f"{r['libpython'] / base:.2f} ({floor})" if base else ""
            print(
                f"| {name} | {r['rps']:,.0f} | {r['total']:.1f} | {r['libpython']:.1f} | "
                f"{r['kernel']:.1f} | {r['server']:.1f} | {r['other']:.1f} | {ratio} |"
            )
    print(f"\nserver logs: {log}")


if __name__ == "__main__":
    main()
