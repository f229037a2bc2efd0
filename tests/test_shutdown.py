"""Registrations still live at interpreter exit: cancelled by netnotify's atexit hook, promptly, quietly.

The four ways a process ends (normal exit, sys.exit(), an unhandled exception, SIGINT during a callback) are
checked by tests/stress/shutdown.py, RUNS times in a row each (NETNOTIFY_SHUTDOWN_RUNS, default 50) while
changes flood in; the full run (docs/reliability.md, "Shutdown"):

    python tests/stress/shutdown.py --runs 200
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from nettest import TESTS_DIR, NetNS, run_python

pytestmark = pytest.mark.linux

EXIT_SCRIPT = TESTS_DIR / "exit_script.py"
SHUTDOWN_STRESS = TESTS_DIR / "stress" / "shutdown.py"
EXIT_BUDGET = 10.0  # seconds from "ready" (the main thread ending) to the process being gone
FLOODED_EXIT_BUDGET = 5.0  # the same, for each run of shutdown.py
RUNS = int(os.environ.get("NETNOTIFY_SHUTDOWN_RUNS", "50"))


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


def test_cpython_reports_an_unhandled_keyboard_interrupt_as_a_kill_by_sigint() -> None:
    """shutdown.py's expectation for the sigint mode is CPython's convention (since 3.8), not netnotify's."""
    done = subprocess.run(
        [sys.executable, "-c", "raise KeyboardInterrupt"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signal.SIGINT, done
    assert "KeyboardInterrupt" in done.stderr


@pytest.mark.parametrize("mode", ["normal", "sys_exit", "exception", "sigint"])
def test_exit_while_changes_flood(ns: NetNS, mode: str) -> None:
    done = run_python(
        [str(SHUTDOWN_STRESS), "--runs", str(RUNS), "--modes", mode, "--budget", str(FLOODED_EXIT_BUDGET)],
        timeout=60 + 10 * RUNS,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report; exit code {done.returncode}\nstderr:\n{done.stderr[-4000:]}"
    (result,) = json.loads(lines[-1])
    assert result["mode"] == mode
    assert result["runs"] == RUNS
    assert result["failures"] == 0, "\n\n".join(result["failure_reports"])
    assert done.returncode == 0, done.stderr[-4000:]
    assert result["exit_max_s"] is not None
    assert result["exit_max_s"] < FLOODED_EXIT_BUDGET
