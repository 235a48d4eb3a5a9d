"""Write the results: ``results.json`` (every scenario of every cell) and ``RESULTS.md``.

``RESULTS.md`` and ``docs/compat.md`` are the same generated text: a grid
per direction (a row per framework and bridge, a column per server), every
scenario that did not pass with its reason and link, and the version of
every framework and server on every Python.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import known
from .apps import ASGI_FRAMEWORKS, WSGI_FRAMEWORKS
from .scenarios import SCENARIOS as SCENARIO_NAMES
from .servers import ASGI_SERVERS, WSGI_SERVERS

__all__ = ["load", "totals_line", "write"]

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
        if not run:
            per_py[py] = "n/a"
            continue
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


def _glance(cells: list[dict[str, Any]]) -> list[str]:
    """Per bridge: cells where everything that ran passed, and scenario passes."""
    rows: dict[tuple[str, str], list[int]] = {}
    for c in sorted(cells, key=lambda c: c["framework"] not in WSGI_FRAMEWORKS):
        run = [r["status"] for r in c["scenarios"].values() if r["status"] != "n/a"]
        if not run:
            continue
        direction = "WsgiToAsgi" if c["framework"] in WSGI_FRAMEWORKS else "AsgiToWsgi"
        row = rows.setdefault((direction, c["bridge"]), [0, 0, 0, 0, 0])
        row[0] += 1
        row[1] += all(s == "pass" for s in run)
        row[2] += run.count("pass")
        row[3] += len(run)
        row[4] += sum(s in ("fail", "bug") for s in run)
    lines = [
        "| direction | bridge | cells run | cells with every scenario passing | scenarios passed "
        "| bugs or unexplained failures |",
        "|---|---|---|---|---|---|",
    ]
    for (direction, br), (n, ok, sp, sr, bad) in rows.items():
        lines.append(
            f"| {direction} | {BRIDGE_LABEL.get(br, br)} | {n} | {ok} ({100 * ok / n:.0f}%) "
            f"| {sp}/{sr} ({100 * sp / sr:.1f}%) | {bad} |"
        )
    return lines


def _not_passing(cells: list[dict[str, Any]]) -> list[str]:
    """Every non-passing scenario, one row per (status, bridge, reason).

    Within a row, each framework lists its scenarios and where they failed;
    servers and Python versions are named only when not all of them are.
    """
    all_py = sorted({c["python"] for c in cells})
    servers_of = {"wsgi": {s.name for s in ASGI_SERVERS}, "asgi": {s.name for s in WSGI_SERVERS}}
    # (status, bridge, detail, link) -> framework -> scenario -> {(server, python)}
    groups: dict[tuple[str, str, str, str], dict[str, dict[str, set[tuple[str, str]]]]] = {}
    for c in cells:
        for name, r in c["scenarios"].items():
            if r["status"] in ("pass", "n/a"):
                continue
            detail = r.get("detail", "")
            if r["status"] == "fail":  # keep the measured text, but not ports and paths
                detail = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", detail)
            key = (r["status"], c["bridge"], detail, r.get("link", ""))
            fw = groups.setdefault(key, {}).setdefault(c["framework"], {})
            fw.setdefault(name, set()).add((c["server"], c["python"]))
    if not groups:
        return ["Every scenario that was run passed."]
    order = {s: i for i, s in enumerate(ORDER)}
    rows: dict[tuple[str, str, str], list[str]] = {}  # (status, reason, where) -> bridges
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1], k[2])):
        status, bridge, detail, link = key
        parts = []
        for fw, scens in groups[key].items():
            kind = "wsgi" if fw in WSGI_FRAMEWORKS else "asgi"
            by_place: dict[frozenset[tuple[str, str]], list[str]] = defaultdict(list)
            for scen, places in scens.items():
                by_place[frozenset(places)].append(scen)
            for places, scen_names in by_place.items():
                parts.append(
                    f"{fw}: {', '.join(scen_names)} on "
                    + _where(set(places), servers_of[kind], all_py)
                )
        reason = detail.replace("|", "\\|").replace("\n", " ")
        if link:
            reason += f" ([link]({link}))"
        rows.setdefault((status, reason, "<br>".join(parts)), []).append(
            BRIDGE_LABEL.get(bridge, bridge)
        )
    lines = ["| status | bridge | reason | where |", "|---|---|---|---|"]
    peer = BRIDGE_LABEL["a2wsgi"]
    for (status, reason, where), bridges in sorted(
        rows.items(), key=lambda kv: (order.get(kv[0][0], 9), peer in kv[1], kv[0][1])
    ):
        lines.append(
            f"| {MARK.get(status, '')} {status} | {', '.join(bridges)} | {reason} | {where} |"
        )
    return lines


def _where(places: set[tuple[str, str]], all_servers: set[str], all_py: list[str]) -> str:
    by_py: dict[str, set[str]] = defaultdict(set)
    for server, py in places:
        by_py[py].add(server)
    same = {frozenset(v) for v in by_py.values()}
    if len(same) == 1:
        servers = set(next(iter(same)))
        srv = "every server" if servers >= all_servers else ", ".join(sorted(servers))
        pys = sorted(by_py)
        return srv + ("" if pys == all_py else f" (Python {', '.join(pys)})")
    return "; ".join(
        ("every server" if v >= all_servers else ", ".join(sorted(v))) + f" (Python {py})"
        for py, v in sorted(by_py.items())
    )


def _na(cells: list[dict[str, Any]]) -> list[str]:
    """One row per reason a scenario is not run, with what it covers."""
    groups: dict[tuple[str, str], dict[str, set[str]]] = {}
    for c in cells:
        for name, r in c["scenarios"].items():
            if r["status"] != "n/a" or name == "orm":
                continue
            g = groups.setdefault(
                (r["detail"], r.get("link", "")),
                {"bridge": set(), "framework": set(), "scenario": set(), "server": set()},
            )
            g["bridge"].add(BRIDGE_LABEL.get(c["bridge"], c["bridge"]))
            g["framework"].add(c["framework"])
            g["scenario"].add(name)
            g["server"].add(c["server"])
    every = {
        "framework": set(WSGI_FRAMEWORKS) | set(ASGI_FRAMEWORKS),
        "scenario": set(SCENARIO_NAMES) - {"orm"},
        "server": {s.name for s in ASGI_SERVERS} | {s.name for s in WSGI_SERVERS},
    }

    def show(kind: str, values: set[str]) -> str:
        if kind in every and values >= every[kind] - {"django", "django-asgi"} and kind != "server":
            return f"every {kind}"
        return ", ".join(sorted(values))

    lines = ["| why | bridges | frameworks | scenarios | servers |", "|---|---|---|---|---|"]
    for (detail, link), g in sorted(groups.items()):
        why = detail + (f" ([link]({link}))" if link else "")
        servers = g["server"]
        all_servers = any(
            servers >= {x.name for x in group} for group in (ASGI_SERVERS, WSGI_SERVERS)
        )
        lines.append(
            f"| {why} | {', '.join(sorted(g['bridge']))} | {show('framework', g['framework'])} "
            f"| {show('scenario', g['scenario'])} "
            f"| {'every server' if all_servers else ', '.join(sorted(servers))} |"
        )
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


def _dump(data: dict[str, Any]) -> str:
    """``results.json``: reasons stored once and referenced by id, one cell per line.

    A scenario that passed is the string ``"pass"``; any other outcome is an
    object with its ``status``, its ``reason`` id (n/a, limitation, bug) and
    what was ``measured`` or the ``detail`` of a failure.
    """
    reasons: dict[str, dict[str, str]] = {}
    cells = []
    for c in data["cells"]:
        has_fail = any(r["status"] == "fail" for r in c["scenarios"].values())
        cell = {k: v for k, v in c.items() if k != "log_tail" or has_fail}
        if "log_tail" in c and not has_fail:  # keep what log-matched reasons need
            seen = {r.log for r in known.EXPLAINED if r.log and r.log in c["log_tail"]}
            if seen | set(c.get("log_markers", [])):
                cell["log_markers"] = sorted(seen | set(c.get("log_markers", [])))
        scen = {}
        for name, r in c["scenarios"].items():
            r = dict(r)
            if r["status"] in ("n/a", "limitation", "bug"):
                text, link = r.pop("detail", ""), r.pop("link", "")
                rid = hashlib.sha1(f"{r['status']}|{text}|{link}".encode()).hexdigest()[:8]
                reasons[rid] = {"kind": r["status"], "text": text, "link": link}
                r["reason"] = rid
            elif not r.get("detail"):
                r.pop("detail", None)
            scen[name] = r["status"] if list(r) == ["status"] else r
        cell["scenarios"] = scen
        cell["timing"] = {k: round(v, 1) for k, v in c.get("timing", {}).items()}
        cells.append(cell)
    head = {k: v for k, v in data.items() if k != "cells"}
    head["reasons"] = dict(sorted(reasons.items()))
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    body = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cells)
    return f'{text},\n "cells": [\n{body}\n ]\n}}\n'


def load(path: Path) -> dict[str, Any]:
    """Read a ``results.json`` written by :func:`write`, with every reason filled in again."""
    data: dict[str, Any] = json.loads(path.read_text())
    reasons = data.pop("reasons", {})
    for c in data["cells"]:
        c["scenarios"] = {
            n: ({"status": r} if isinstance(r, str) else r) for n, r in c["scenarios"].items()
        }
        for r in c["scenarios"].values():
            rid = r.pop("reason", None)
            if rid is not None:
                r["detail"], r["link"] = reasons[rid]["text"], reasons[rid]["link"]
            r.setdefault("detail", "")
    return data


def write(
    cells: list[dict[str, Any]],
    pythons: dict[str, tuple[str, dict[str, str]]],
    wall: float,
    out: Path,
    docs: Path | None,
    *,
    quick: bool,
    generated: str | None = None,
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
    stamp = generated or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
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
    (out / "results.json").write_text(_dump(data))

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
        "lifespan startup; a client that leaves mid-stream (the app's stream must be closed within 5 s, "
        "and the next request served); and, for Django, an ORM query on SQLite.",
        "",
        "A grid cell reads `passed/run` (scenarios that do not apply are not counted): ✅ all "
        "passed; 🟡 the rest fail for a documented upstream reason, listed below with a link "
        "(for the a2wsgi rows, a2wsgi's own behaviour counts as upstream); ❌ at least one "
        "failure that is an asgibridge bug or is unexplained. Where Python versions differ, "
        "each result names its versions; `n/a` means the combination cannot run at all.",
        "",
        "## At a glance",
        "",
        *_glance(cells),
        "",
        "Cells that cannot run at all (a2wsgi on hypercorn's trio worker) are not counted. "
        "A scenario that fails for a framework's or server's own reason fails for every "
        "bridge alike, which is why few cells pass everything.",
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
