"""Run Django's ``tests/runtests.py`` and write every test's outcome to a JSON file.

Usage (by scripts/django_suite.py, in a child process)::

    python django_runner.py RESULTS.json HANG_SECONDS path/to/tests/runtests.py [runtests args]

The outcome of each test is taken from a unittest result class installed on
Django's ``DiscoverRunner``, so it does not depend on parsing verbose output, and
it also sees the events that parallel workers send back to the parent process.
If the run is still going after HANG_SECONDS, every thread's stack is dumped to
stderr (the run's log) and the process exits, so that a hang is visible.
"""

from __future__ import annotations

import faulthandler
import json
import os
import runpy
import sys
import time
import traceback
import unittest
from typing import Any, ClassVar

_RANK = {"ok": 0, "skip": 0, "xfail": 0, "uxsuccess": 1, "fail": 2, "error": 3}


def _summary(err: Any) -> str:
    """The last line of a formatted exception (type and message), kept short."""
    exc_type, exc, _tb = err
    lines = traceback.format_exception_only(exc_type, exc)
    text = lines[-1].strip() if lines else repr(exc)
    return text[:300]


class Recorder(unittest.TextTestResult):
    """TextTestResult that also keeps a test-id -> outcome map and dumps it at the end."""

    results_path = ""
    outcomes: ClassVar[dict[str, dict[str, Any]]] = {}
    started: ClassVar[dict[str, float]] = {}

    def startTest(self, test: Any) -> None:
        self.started[test.id()] = time.perf_counter()
        super().startTest(test)

    def stopTest(self, test: Any) -> None:
        super().stopTest(test)
        began = self.started.pop(test.id(), None)
        entry = self.outcomes.get(test.id())
        if began is not None and entry is not None:
            entry["time"] = round(time.perf_counter() - began, 4)

    def _set(self, test: Any, outcome: str, detail: str = "") -> None:
        tid = test.id()
        old = self.outcomes.get(tid)
        if old is not None and _RANK[old["outcome"]] > _RANK[outcome]:
            return
        entry: dict[str, Any] = {"outcome": outcome}
        if old is not None and "time" in old:
            entry["time"] = old["time"]
        if detail:
            entry["detail"] = detail
        self.outcomes[tid] = entry

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self._set(test, "ok")

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._set(test, "error", _summary(err))

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._set(test, "fail", _summary(err))

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._set(test, "skip", str(reason)[:200])

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._set(test, "uxsuccess")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(
                test,
                "fail" if failed else "error",
                f"[{subtest._subDescription()}] {_summary(err)}",
            )

    def stopTestRun(self) -> None:
        super().stopTestRun()
        _dump()


def _dump() -> None:
    tmp = Recorder.results_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(Recorder.outcomes, f, indent=0, sort_keys=True)
    os.replace(tmp, Recorder.results_path)


def main() -> None:
    results_path, hang_seconds, runtests = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    Recorder.results_path = os.path.abspath(results_path)
    if hang_seconds > 0:
        faulthandler.dump_traceback_later(hang_seconds, exit=True)
    tests_dir = os.path.dirname(os.path.abspath(runtests))
    sys.path.insert(0, tests_dir)
    os.chdir(tests_dir)
    from django.test import runner as djrunner

    djrunner.DiscoverRunner.get_resultclass = lambda self: Recorder  # type: ignore[method-assign]
    sys.argv = [runtests, *sys.argv[4:]]
    started = time.monotonic()
    try:
        runpy.run_path(runtests, run_name="__main__")
    finally:
        print(f"[django_runner] wall {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
