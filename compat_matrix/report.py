"""Write the results: ``results.json`` (every scenario of every cell) and ``RESULTS.md``.

``RESULTS.md`` and ``docs/compat.md`` are the same generated text: a grid
per direction (a row per framework and bridge, a column per server), every
scenario that did not pass with its reason and link, and the version of
every framework and server on every Python.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .apps import ASGI_FRAMEWORKS, WSGI_FRAMEWORKS
from .servers import ASGI_SERVERS, WSGI_SERVERS

__all__ = ["totals_line", "write"]

ORDER = ["pass", "fail", "bug", "limitation", "n/a"]
MARK = {"pass": "✅", "limitation": "🟡", "bug": "❌", "fail": "❌"}
BRIDGE_LABEL = {
    "asgibridge-thread": "asgibridge (thread)",
    "asgibridge-greenlet": "asgibridge (greenlet)",
    "asgibridge": "asgibridge",
    "a2wsgi": "a2wsgi (peer)",
}


def totals_line(totals: dict[str, int]) -> str:
    return ", ".join(f"{totals[k]} {k}" for k in ORDER if totals.get(k)) or "nothing run"


def _worst(statuses: list[str]) -> str:
    for s in ("fail", "bug", "limitation"):
        if s in statuses:
            return s
    return "pass"


def _cell_text(runs: dict[str, dict[str, Any]]) -> str:
    """One grid cell: the runs of one (framework, bridge, server) over the Pythons."""
    per_py: dict[str, str] = {}
    for py, scen in runs.items():
        run = [r["status"] for r in scen.values() if r["status"] != "n/a"]
        passed = run.count("pass")
        worst = _worst(run)
        per_py[py] = f"{MARK[worst]} {passed}/{len(run)}"
    texts = set(per_py.values())
    if len(texts) == 1:
        return texts.pop()
    groups: dict[str, list[str]] = defaultdict(list)
    for py, text in per_py.items():
        groups[text].append(py)
    return "<br>".join(f"{t} ({', '.join(p)})" for t, p in sorted(groups.items()))


def _grid(cells: list[dict[str, Any]], frameworks: list[str], servers: list[str]) -> list[str]:
    index: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    bridges: list[str] = []
    for c in cells:
        index[(c["framework"], c["bridge"], c["server"])][c["python"]] = c["scenarios"]
        if c["bridge"] not in bridges:
            bridges.append(c["bridge"])
    used = [s for s in servers if any(k[2] == s for k in index)]
    lines = [
        "| framework | bridge | " + " | ".join(used) + " |",
        "|---|---|" + "---|" * len(used),
    ]
    for fw in frameworks:
        for br in bridges:
            if not any((fw, br, s) in index for s in used):
                continue
            row = [_cell_text(index[(fw, br, s)]) if (fw, br, s) in index else "" for s in used]
            lines.append(f"| {fw} | {BRIDGE_LABEL.get(br, br)} | " + " | ".join(row) + " |")
    return lines


def _not_passing(cells: list[dict[str, Any]]) -> list[str]:
    # Group identical outcomes over Python versions and servers, so one
    # upstream limitation is one row, not forty.
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for c in cells:
        for name, r in c["scenarios"].items():
            if r["status"] in ("pass", "n/a"):
                continue
            key = (
                r["status"],
                c["bridge"],
                c["framework"],
                name,
                r.get("detail", ""),
                r.get("link", ""),
            )
            groups[key].append(f"{c['server']} (py{c['python']})")
    order = {s: i for i, s in enumerate(ORDER)}
    lines = [
        "| status | bridge | framework | scenario | where | reason |",
        "|---|---|---|---|---|---|",
    ]
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1], k[2], k[3])):
        status, bridge, fw, scen, detail, link = key
        where = _compact(groups[key])
        reason = detail.replace("|", "\\|").replace("\n", " ")
        if link:
            reason += f" ([link]({link}))"
        lines.append(
            f"| {MARK.get(status, '')} {status} | {BRIDGE_LABEL.get(bridge, bridge)} | {fw} "
            f"| {scen} | {where} | {reason} |"
        )
    return lines if len(lines) > 2 else ["Every scenario that was run passed."]


def _compact(places: list[str]) -> str:
    by_server: dict[str, list[str]] = defaultdict(list)
    for p in places:
        server, py = p.split(" (py")
        by_server[server].append(py.rstrip(")"))
    return "; ".join(f"{s} ({', '.join(sorted(v))})" for s, v in by_server.items())


def _na(cells: list[dict[str, Any]]) -> list[str]:
    seen: dict[tuple[str, str, str], str] = {}
    for c in cells:
        for name, r in c["scenarios"].items():
            if r["status"] == "n/a":
                link = f" ([link]({r['link']}))" if r.get("link") else ""
                seen[(c["framework"], name, BRIDGE_LABEL.get(c["bridge"], c["bridge"]))] = (
                    r["detail"] + link
                )
    rows = {}
    for (fw, name, br), text in seen.items():
        rows.setdefault((fw, name, text), []).append(br)
    lines = ["| framework | scenario | bridges | why |", "|---|---|---|---|"]
    for (fw, name, text), brs in sorted(rows.items()):
        if name == "orm":
            continue
        lines.append(f"| {fw} | {name} | {', '.join(sorted(set(brs)))} | {text} |")
    return lines


def _versions(pythons: dict[str, tuple[str, dict[str, str]]]) -> list[str]:
    labels = sorted(pythons)
    lines = [
        "| package | " + " | ".join(f"Python {pythons[p][0]}" for p in labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    names = sorted({n for _, v in pythons.values() for n in v})
    for n in names:
        lines.append(f"| {n} | " + " | ".join(pythons[p][1].get(n, "") for p in labels) + " |")
    return lines


def write(
    cells: list[dict[str, Any]],
    pythons: dict[str, tuple[str, dict[str, str]]],
    wall: float,
    out: Path,
    docs: Path | None,
    *,
    quick: bool,
) -> dict[str, Any]:
    """Write ``results.json`` and ``RESULTS.md`` to ``out`` (and ``docs``); return the data."""
    totals: dict[str, int] = defaultdict(int)
    ours: dict[str, int] = defaultdict(int)
    stale = []
    for c in cells:
        for name, r in c["scenarios"].items():
            totals[r["status"]] += 1
            if c["bridge"].startswith("asgibridge"):
                ours[r["status"]] += 1
            if r.get("stale"):
                stale.append(f"{c['id']} {name}: {r['stale']}")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    data = {
        "generated": stamp,
        "quick": quick,
        "wall_seconds": round(wall, 1),
        "pythons": {p: {"version": v[0], "packages": v[1]} for p, v in pythons.items()},
        "totals": dict(totals),
        "totals_asgibridge": dict(ours),
        "stale": stale,
        "cells": cells,
    }
    (out / "results.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    wsgi_cells = [c for c in cells if c["framework"] in WSGI_FRAMEWORKS]
    asgi_cells = [c for c in cells if c["framework"] in ASGI_FRAMEWORKS]
    py_list = ", ".join(v[0] for _, v in sorted(pythons.items()))
    md = [
        "# Compatibility matrix",
        "",
        "<!-- Generated by `python -m compat_matrix`; do not edit by hand. -->",
        "",
        f"Real frameworks on real servers through asgibridge, and through a2wsgi beside it. "
        f"Generated {stamp} by `python -m compat_matrix`{' --quick' if quick else ''} "
        f"in {wall / 60:.1f} minutes of wall time, on Python {py_list}: "
        f"{len(cells)} cells, {totals_line(totals)} scenario runs "
        f"(asgibridge's cells alone: {totals_line(ours)}).",
        "",
        "Each cell starts the server as a subprocess on 127.0.0.1 and drives it with httpx "
        "(HTTP/1.1, or HTTP/2 with prior knowledge for the `-h2c` columns). The scenarios: "
        "a GET with a query and a non-ASCII percent-encoded path; a form POST and a JSON POST; "
        "a 5 MiB upload and a 2 MiB chunked one (checked by SHA-256); server-sent events; "
        "several cookies and the framework's own session; a redirect; status 418 with a custom "
        "header; the app mounted under `/mnt`; an app error answering 500; state set at "
        "lifespan startup; a client that leaves mid-stream (the app's stream must be closed, and "
        "the next request served); and, for Django, an ORM query on SQLite.",
        "",
        "A grid cell reads `passed/run`: ✅ all passed; 🟡 the rest fail for a documented "
        "upstream reason (listed below); ❌ at least one failure that is an asgibridge bug or "
        "is unexplained. When Python versions differ, each result names its versions.",
        "",
        "## WSGI apps on ASGI servers (`WsgiToAsgi`)",
        "",
        *_grid(wsgi_cells, list(WSGI_FRAMEWORKS), [s.name for s in ASGI_SERVERS]),
        "",
        "## ASGI apps on WSGI servers (`AsgiToWsgi`)",
        "",
        *_grid(asgi_cells, list(ASGI_FRAMEWORKS), [s.name for s in WSGI_SERVERS]),
        "",
        "## Every scenario that did not pass",
        "",
        *_not_passing(cells),
        "",
        "## Scenarios that do not apply",
        "",
        *_na(cells),
        "",
        "## Versions",
        "",
        *_versions(pythons),
        "",
    ]
    text = "\n".join(md)
    (out / "RESULTS.md").write_text(text)
    if docs is not None:
        docs.write_text(text)
    return data
