"""Concurrency: threads register, cancel, complete rows and read tables at random while changes flow.

The stress run itself is tests/stress/concurrency.py (its docstring describes the checker); here it runs for a
short time, and once with a deliberately broken cancel to show that its checker can fail. The full run:

    python tests/stress/concurrency.py --threads 8 --seconds 60

Also here: the cancel contract that the stress run found broken, as a focused test.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import pytest
from nettest import TESTS_DIR, BackgroundCall, Lan, NetNS, Registrations, run_python

import netnotify

pytestmark = pytest.mark.linux

SCRIPT = TESTS_DIR / "stress" / "concurrency.py"
SECONDS = float(os.environ.get("NETNOTIFY_STRESS_SECONDS", "12"))


def run_stress(*args: str, timeout: float) -> tuple[int, dict[str, Any], str]:
    done = run_python([str(SCRIPT), *args], timeout=timeout)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report; exit code {done.returncode}\nstderr:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, report, done.stderr


def test_eight_threads_at_random_while_changes_flow(ns: NetNS) -> None:
    code, report, stderr = run_stress(
        "--threads", "8", "--seconds", str(SECONDS), "--grace", "30", timeout=SECONDS + 120
    )
    assert code == 0, f"{report['failures']}\nstderr:\n{stderr[-4000:]}"
    counts = report["counts"]
    # Every kind of operation happened, callbacks ran, and some cancels raced with callbacks.
    for what in ("registers", "cancels", "callbacks", "entries", "tables", "conversions", "self_cancels"):
        assert counts.get(what, 0) > 0, f"no {what} in {counts}"
    assert counts.get("violations", 0) == 0
    assert report["cancel_max_ms"] < 5000


def test_the_checker_catches_a_cancel_that_returns_early(ns: NetNS) -> None:
    code, report, _ = run_stress("--threads", "4", "--seconds", "3", "--broken-cancel", timeout=90)
    assert code == 1, report
    assert report["counts"].get("violations", 0) > 0, report


def test_cancel_from_another_thread_waits_for_a_callback_that_cancelled_itself(
    ns: NetNS, regs: Registrations, lan: Lan
) -> None:
    """A callback cancels its own registration and goes on running; cancel() from another thread must
    still wait for it to return ("when it returns, no callback of that registration is running"). It
    returned at once before the fix: the cancel from inside had already dropped the handle's link to the
    registration."""
    inside = threading.Event()
    callback_returned: list[float] = []
    holder: list[netnotify.NotificationHandle] = []

    def callback(context: object, row: Any, kind: netnotify.MibNotificationType) -> None:
        if not holder or inside.is_set():
            return
        holder[0].cancel()  # from inside: does not wait for itself
        inside.set()
        time.sleep(1.0)
        callback_returned.append(time.monotonic())

    holder.append(regs.keep(netnotify.notify_route_change2(socket.AF_INET, callback)))
    ns.ip("route add 10.51.1.0/24 via 10.9.0.2 dev v0")
    assert inside.wait(5), "no callback came"
    assert not holder[0].active

    handle = holder[0]

    def with_block() -> None:
        with handle:
            pass

    calls = [BackgroundCall(handle.cancel), BackgroundCall(with_block)]
    for call in calls:
        call.thread.join(5)
        assert not call.thread.is_alive(), "cancel() hung"
        assert call.error is None
        assert call.returned_at is not None
        assert callback_returned, (
            "cancel() returned while the callback that cancelled itself was still running"
        )
        assert call.returned_at >= callback_returned[0]
    with pytest.raises(netnotify.InvalidHandleError):
        netnotify.cancel_mib_change_notify2(holder[0])
