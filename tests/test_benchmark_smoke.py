"""The benchmark harness (benchmarks/run.py) runs end to end at its --quick sizes.

It checks that the report is written with every listener in it and that the raw C reader's counts are sane.
It asserts no speed target: speed is never claimed from a timed test (benchmarks/RESULTS.md holds the
figures, from a full run). The harness changes the network only in namespaces it creates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nettest import REPO_ROOT

pytestmark = pytest.mark.linux

RUN = REPO_ROOT / "benchmarks" / "run.py"
LISTENERS = [
    "c",
    "c-default",
    "ip-monitor",
    "pyroute2",
    "pyroute2-large",
    "nn-count",
    "nn-read",
    "watch",
    "watch-async",
    "py-floor",
    "py-async-floor",
]


def check_can_run() -> None:
    if not RUN.is_file():
        pytest.skip("benchmarks/ is not in this tree (an sdist)")
    if os.environ.get("CIBUILDWHEEL") == "1":
        pytest.skip("the benchmark checks the source tree's harness, not a wheel")
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("the benchmark needs root: it creates network namespaces")
    missing = [tool for tool in ("gcc", "ip", "unshare", "nsenter", "taskset") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the benchmark needs {', '.join(missing)}")


def test_quick_run_reports_every_listener(tmp_path: Path) -> None:
    check_can_run()
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = out.read_text()
    data: dict[str, Any] = json.loads(out.with_suffix(".json").read_text())
    assert data["errors"] == []
    runs: list[dict[str, Any]] = data["runs"]
    sizes: dict[str, Any] = data["sizes"]

    # Every listener ran every burst workload and the latency workload, and is in the report.
    messages = {
        f"route-{sizes['routes_small']}": 2 * sizes["routes_small"],
        f"route-{sizes['routes_big']}": 2 * sizes["routes_big"],
        f"address-{sizes['addresses']}+{sizes['addresses']}": 4 * sizes["addresses"],
        f"veth-{sizes['veths']}": 4 * sizes["veths"],
    }
    for workload in [*messages, "latency"]:
        ran = {r["listener"] for r in runs if r["workload"] == workload}
        assert ran == set(LISTENERS), f"{workload}: {sorted(ran)}"
    for workload in messages:
        assert f"### {workload}:" in report
    for name in LISTENERS:
        assert f"| {name} |" in report

    # The C readers' counts are sane: the truth reader saw exactly the messages the generator makes, and the C
    # reader with netnotify's buffer got them all (at these sizes nothing overflows).
    for workload, count in messages.items():
        (c,) = [r for r in runs if r["workload"] == workload and r["listener"] == "c"]
        assert c["generated"] == count, workload
        assert c["events"] == c["messages"] == c["expected"] == count, workload
        assert c["lost"] == 0, workload
        assert c["drops"] == 0, workload
        assert c["cpu_s"] >= 0, workload
    # So are the Python floors' (a raw socket read in Python, blocking or by asyncio): every message
    for workload, count in messages.items():
        for name in ("py-floor", "py-async-floor"):
            (floor,) = [r for r in runs if r["workload"] == workload and r["listener"] == name]
            assert floor["events"] == floor["expected"] == count, (workload, name)
    (c_latency,) = [r for r in runs if r["workload"] == "latency" and r["listener"] == "c"]
    assert c_latency["events"] == sizes["latency_count"]
    assert c_latency["latency_us"]["n"] == sizes["latency_count"]

    # The other parts ran and are in the report.
    for workload in ("idle", "scale", "cancel", "tables"):
        assert any(r["workload"] == workload for r in runs), workload
    for section in ("## Targets", "## Bursts", "## Latency", "## Idle", "## Scale", "## Cancel", "## Tables"):
        assert section in report
