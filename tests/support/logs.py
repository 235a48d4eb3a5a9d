"""Count the log records of every logger, the servers' included, while a test runs.

``capture(level)`` installs one ``LogCapture`` handler on the root logger and on
uvicorn's and waitress's loggers (uvicorn's do not propagate to the root), and
removes it on exit. A record seen by several of them is counted once.
``wait_for(predicate)`` polls a condition, bounded in time (also for tests that
capture no logs).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["WAIT", "LogCapture", "capture", "wait_for"]

WAIT = 10.0


class LogCapture(logging.Handler):
    """Every record at ``level`` or worse, from any logger it is installed on."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            # Installed on several loggers; a record that propagates is counted once.
            if not any(r is record for r in self.records):
                self.records.append(record)

    def texts(self) -> list[str]:
        """``name: message`` of each record, with its traceback if it has one."""
        fmt = logging.Formatter("%(name)s: %(message)s")
        with self._guard:
            return [fmt.format(r) for r in self.records]

    def lines(self) -> list[str]:
        """``LEVEL name: message`` of each record, without tracebacks."""
        with self._guard:
            return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records]


@contextlib.contextmanager
def capture(level: int = logging.WARNING) -> Iterator[LogCapture]:
    """Capture records at ``level`` or worse from the root, uvicorn and waitress loggers."""
    log = LogCapture(level)
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("waitress")]
    for logger in loggers:
        logger.addHandler(log)
    try:
        yield log
    finally:
        for logger in loggers:
            logger.removeHandler(log)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.01) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it holds or ``timeout`` seconds pass.

    Returns its last value.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
