"""Registrations still live at interpreter exit: cancelled by netnotify's atexit hook, promptly, quietly."""

from __future__ import annotations

import time

import pytest
from nettest import TESTS_DIR, NetNS, run_python

pytestmark = pytest.mark.linux

EXIT_SCRIPT = TESTS_DIR / "exit_script.py"
EXIT_BUDGET = 10.0  # seconds from "ready" (the main thread ending) to the process being gone


@pytest.mark.parametrize("mode", ["churn", "sleeping"])
def test_exit_with_live_registrations(ns: NetNS, mode: str) -> None:
    done = run_python([str(EXIT_SCRIPT), mode], timeout=40)
    ended = time.monotonic()
    report = f"exit code {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    for trouble in ("Traceback", "Fatal Python error", "Exception ignored"):
        assert trouble not in done.stderr, report
    lines = done.stdout.splitlines()
    ready = [float(line.split()[1]) for line in lines if line.startswith("ready ")]
    assert ready, report
    assert ended - ready[0] < EXIT_BUDGET, report
    # notify_* after netnotify's atexit hook ran raises RuntimeError.
    assert "late-notify: RuntimeError" in lines, report
    if mode == "sleeping":  # the hook waited for the running callback to end
        assert lines.index("callback-end") < lines.index("late-notify: RuntimeError"), report
