"""fork(): what a child inherits of the parent's registrations (docs/reliability.md, "fork").

tests/fork_script.py forks while registrations of every kind are live and flood.py changes routes, addresses
and links. In the child no callback of the parent's registrations ever runs (the parent's callbacks write any
call made in another process into a pipe); the inherited handles read as not active and every form of cancel
of them returns at once (also when another thread of the parent was inside cancel() at the fork); inherited
watchers are closed (also when one was delivering to its callback at the fork) and what they had queued can
still be taken; registrations made in the child get real changes; the child exits cleanly with os._exit() or
sys.exit() (netnotify's exit hook then cancels what is left). The parent keeps receiving after each fork.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from nettest import TESTS_DIR, NetNS, run_python

pytestmark = pytest.mark.linux

SCRIPT = TESTS_DIR / "fork_script.py"
INHERITED_CANCEL_BUDGET = 1.0  # seconds for all the cancels of inherited handles in a child


def run_fork_script(mode: str) -> dict[str, Any]:
    done = run_python([str(SCRIPT), mode], timeout=120)
    report = f"exit code {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, report
    for trouble in ("Traceback", "Fatal Python error", "Exception ignored", "Timeout"):
        assert trouble not in done.stderr, report
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["calls_in_children"] == [], f"a parent's callback ran in a child: {result}"
    assert result["children"], report
    for kind in ("interface", "address", "route", "watch"):
        assert result["parent"].get(kind, 0) > 0, f"the parent got no {kind} callback: {result}"
    return result


@pytest.mark.parametrize("mode", ["os_exit", "sys_exit", "cancelling", "self_cancelled", "watcher_busy"])
def test_fork(ns: NetNS, mode: str) -> None:
    result = run_fork_script(mode)
    for child in result["children"]:
        assert not child.get("hung"), f"a child hung: {result}"
        assert child["exit_code"] == 0, f"a child failed: {child}"
        assert child["new_registrations_called"], f"a registration made in the child got nothing: {child}"
        assert not any(child["inherited_active"].values()), f"an inherited handle reads as active: {child}"
        assert not any(child["inherited_active_after_cancel"].values()), child
        assert child["inherited_cancel_seconds"] < INHERITED_CANCEL_BUDGET, child
        assert child["second_strict_cancel"] == "InvalidHandleError", child
        # Inherited watchers are closed in the child; what was queued at the fork can still be taken.
        assert all(child["inherited_watchers_closed"]), child
        if mode == "sys_exit":
            assert child["left_for_exit_hook"], child
        if mode in ("cancelling", "self_cancelled"):
            assert "blocked" in child["inherited_active"], child
            assert child["canceller_in_parent_returned"], f"the parent's cancel() did not return: {child}"
        if mode == "watcher_busy":  # a watcher was delivering to its callback at the fork
            assert len(child["inherited_watchers_closed"]) == 3, child
            assert child["inherited_queued_events"] > 0, child
            assert child["inherited_queued_end"] == "WatcherClosed", child
    assert len(result["children"]) == {"os_exit": 5, "sys_exit": 2}.get(mode, 1)


def test_multiprocessing_fork_start_method(ns: NetNS) -> None:
    result = run_fork_script("multiprocessing")
    (child,) = result["children"]
    assert child["exit_code"] == 0, child
    assert child["new_registrations_called"], child
