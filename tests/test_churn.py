"""Churn: register/cancel cycles of every kind while changes flood in; memory, fds and threads stay flat.

tests/stress/churn.py does the work (its docstring lists what a cycle does and what is measured). In CI it
runs NETNOTIFY_STRESS_CYCLES cycles (default 2,000); the full run (docs/reliability.md, "Churn"):

    python tests/stress/churn.py --cycles 10000

A second, short run with a deliberate leak shows that the bounds catch one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from nettest import TESTS_DIR, NetNS, run_python

pytestmark = pytest.mark.linux

SCRIPT = TESTS_DIR / "stress" / "churn.py"
CYCLES = int(os.environ.get("NETNOTIFY_STRESS_CYCLES", "2000"))
# Growth allowed from the warm-up to the end (churn.py enforces the same, from its defaults).
MAX_OBJECT_GROWTH = 100
MAX_BLOCK_GROWTH = 500
MAX_RSS_GROWTH_KIB = 2048


def run_churn(*args: str, timeout: float) -> tuple[int, dict[str, Any], str]:
    done = run_python([str(SCRIPT), *args], timeout=timeout)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report; exit code {done.returncode}\nstderr:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, report, done.stderr


def test_churn_of_every_kind_while_changes_flood(ns: NetNS) -> None:
    code, report, stderr = run_churn(
        "--cycles",
        str(CYCLES),
        "--max-object-growth",
        str(MAX_OBJECT_GROWTH),
        "--max-block-growth",
        str(MAX_BLOCK_GROWTH),
        "--max-rss-growth-kib",
        str(MAX_RSS_GROWTH_KIB),
        timeout=60 + CYCLES * 0.05,
    )
    assert code == 0, f"{report['failures']}\nstderr:\n{stderr[-4000:]}"
    counts = report["counts"]
    for kind in ("interface", "address", "route"):
        assert counts[f"register_{kind}"] == CYCLES
    assert counts["watch"] == CYCLES
    assert counts["teredo_not_supported"] == CYCLES
    assert counts["stable_handle"] > 0, counts
    assert counts["stable_table_now"] > 0, counts
    assert counts["stable_handle"] + counts["stable_table_now"] == CYCLES
    # Every fourth cycle cancels its registrations (and closes its watcher) from inside a callback.
    assert counts["self_cancelled"] > 0, counts
    assert counts["watch_closed_inside"] > 0, counts
    assert counts["callbacks"] > 0, counts
    assert counts["watch_events"] > 0, counts
    assert counts.get("violations", 0) == 0
    growth = report["growth"]
    assert growth["gc_objects"] <= MAX_OBJECT_GROWTH, report
    assert growth["allocated_blocks"] <= MAX_BLOCK_GROWTH, report
    assert growth["rss_kib"] <= MAX_RSS_GROWTH_KIB, report
    assert growth["fds"] == 0, report
    assert growth["threads"] == 0, report
    checkpoints = report["checkpoints"]
    assert len(checkpoints) >= 10
    assert all(c["fds"] == checkpoints[0]["fds"] for c in checkpoints), checkpoints
    assert all(c["threads"] == checkpoints[0]["threads"] for c in checkpoints), checkpoints


def test_the_bounds_catch_a_leak(ns: NetNS) -> None:
    code, report, _ = run_churn("--cycles", "200", "--leak", timeout=120)
    assert code == 1, report
    assert any(failure.startswith("gc_objects grew") for failure in report["failures"]), report
