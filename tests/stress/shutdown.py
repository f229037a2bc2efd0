"""Shutdown: a process that ends with live registrations while changes flood in exits promptly, many times.

    python tests/stress/shutdown.py [--runs 200] [--modes normal,sys_exit,exception,sigint] [--json FILE]

Runs tests/exit_script.py MODE --runs times in a row for each mode (each run in a private network namespace of
its own, with registrations of every kind live and flood.py changing routes, addresses and links) and checks
each run:

- the exit code: normal 0, sys_exit 3, exception 1, sigint -SIGINT (CPython re-raises an unhandled
  KeyboardInterrupt as a kill by SIGINT, so that the parent sees it: the shell's 130);
- the exit time, from "ready" (the moment the process starts to end) until the process is gone, is under
  --budget seconds;
- stderr has no "Fatal Python error" and no "Exception ignored"; it has the traceback of the exception (or of
  the KeyboardInterrupt) in those modes and no traceback at all otherwise;
- netnotify's exit hook ran: a notify_* call from a later atexit hook raises RuntimeError.

The last line of standard output is a JSON report per mode: runs, failures (the first few described), the
median and maximum exit time and the slowest whole run. Exit code 0 when every run passed.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import nettest
import stresslib

assert sys.platform == "linux", "the stress scripts need Linux (network namespaces)"  # mypy: Linux only

EXIT_SCRIPT = Path(__file__).resolve().parent.parent / "exit_script.py"
EXPECTED_CODE = {"normal": 0, "sys_exit": 3, "exception": 1, "sigint": -signal.SIGINT}
TRACEBACK_OF = {"exception": "RuntimeError: unhandled, on purpose", "sigint": "KeyboardInterrupt"}
RUN_TIMEOUT = 60.0


def one_run(mode: str, budget: float) -> tuple[float | None, float, str | None]:
    """(exit seconds, whole-run seconds, what went wrong or None)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(EXIT_SCRIPT), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=nettest.python_env(),
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        return None, time.monotonic() - started, f"still running after {RUN_TIMEOUT} s\n{stdout}\n{stderr}"
    ended = time.monotonic()
    report = f"exit code {process.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    lines = stdout.splitlines()
    ready = [float(line.split()[1]) for line in lines if line.startswith("ready ")]
    exit_seconds = ended - ready[0] if ready else None
    problem = None
    if process.returncode != EXPECTED_CODE[mode]:
        problem = f"exit code {process.returncode}, expected {EXPECTED_CODE[mode]}"
    elif exit_seconds is None:
        problem = "no ready line"
    elif exit_seconds > budget:
        problem = f"took {exit_seconds:.2f} s to exit (budget {budget} s)"
    elif "Fatal Python error" in stderr or "Exception ignored" in stderr:
        problem = "trouble on stderr"
    elif mode in TRACEBACK_OF and TRACEBACK_OF[mode] not in stderr:
        problem = "the expected traceback is missing"
    elif mode not in TRACEBACK_OF and "Traceback" in stderr:
        problem = "a traceback on stderr"
    elif "late-notify: RuntimeError" not in lines:
        problem = "netnotify's exit hook did not run (a late notify_* call did not raise RuntimeError)"
    return exit_seconds, ended - started, None if problem is None else f"{problem}\n{report}"


def run_mode(mode: str, runs: int, budget: float) -> dict[str, Any]:
    exits: list[float] = []
    wholes: list[float] = []
    failures: list[str] = []
    for _ in range(runs):
        exit_seconds, whole, problem = one_run(mode, budget)
        wholes.append(whole)
        if exit_seconds is not None:
            exits.append(exit_seconds)
        if problem is not None:
            failures.append(problem)
    return {
        "mode": mode,
        "runs": runs,
        "failures": len(failures),
        "failure_reports": failures[:3],
        "exit_median_s": round(statistics.median(exits), 3) if exits else None,
        "exit_max_s": round(max(exits), 3) if exits else None,
        "run_max_s": round(max(wholes), 3),
        "seconds": round(sum(wholes), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="runs of each mode, in a row")
    parser.add_argument("--modes", default=",".join(EXPECTED_CODE), help="comma-separated")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds from ready to gone")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = set(modes) - set(EXPECTED_CODE)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    stresslib.enter_private_netns()  # each run makes its own; this keeps the runner off the machine's too
    results = [run_mode(mode, args.runs, args.budget) for mode in modes]
    line = json.dumps(results)
    if args.json is not None:
        args.json.write_text(line + "\n")
    print(line)
    return 1 if any(result["failures"] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
