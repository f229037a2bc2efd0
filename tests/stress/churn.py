"""Churn: register and cancel every kind of registration, over and over, while a generator floods changes.

    python tests/stress/churn.py [--cycles 10000] [--rate 2000] [--json FILE]

Runs in a private network namespace of its own (root needed). One cycle registers one of each kind and cancels
them all:

- notify_ip_interface_change, notify_unicast_ip_address_change and notify_route_change2, with and without
  the initial notification, cancelled with cancel_mib_change_notify2(), handle.cancel() or a `with` block, and
  every fourth cycle cancelled from inside their own (initial) callback;
- notify_stable_unicast_ip_address_table (the generator keeps IPv6 addresses tentative, so it often returns a
  handle, which is cancelled; otherwise the table);
- notify_teredo_port_change (NotSupportedError on Linux: the failing path must not leak either);
- watch() of interface, address and route, queued or with a callback, with or without a snapshot, closed from
  outside or (every fourth cycle) from inside its callback.

The families rotate (AF_UNSPEC, AF_INET, AF_INET6). A callback that runs after its cancel returned counts as a
violation. After a warm-up (a tenth of the cycles), a checkpoint (after gc.collect()) records
len(gc.get_objects()), sys.getallocatedblocks(), VmRSS, open fds and OS threads, at every tenth of the run.
The run fails (exit code 1) when, from the warm-up to the end, objects or blocks grew by more than their
bound, RSS grew by more than its bound, fds or threads do not return to the warm-up figures once cancels
settle, a callback ran after its cancel returned, or an operation raised unexpectedly. The last line of
standard output is a JSON report (also written to --json).

--leak keeps every cycle's callbacks alive (a deliberate leak): the run must then fail. Tests use it to show
the bounds can fail.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stresslib

import netnotify

assert sys.platform == "linux", "the stress scripts need Linux (network namespaces)"  # mypy: Linux only

FAMILIES = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)
LOW_LEVEL: dict[str, Callable[..., netnotify.NotificationHandle]] = {
    "interface": netnotify.notify_ip_interface_change,
    "address": netnotify.notify_unicast_ip_address_change,
    "route": netnotify.notify_route_change2,
}
SELF_CANCEL_WAIT = 2.0  # seconds a cycle waits for the callbacks that cancel themselves
SETTLE_WAIT = 10.0  # seconds fds and threads may take to return to the warm-up figures after cancels


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.violations: list[str] = []
        self.errors: list[str] = []

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def violation(self, what: str) -> None:
        with self.lock:
            if len(self.violations) < 20:
                self.violations.append(what)
            self.counts["violations"] = self.counts.get("violations", 0) + 1


class Registration:
    """One low-level registration: its callback counts calls and checks it was not cancelled already."""

    def __init__(self, stats: Stats, name: str, self_cancel: bool) -> None:
        self.stats = stats
        self.name = name
        self.self_cancel = self_cancel
        self.handle: netnotify.NotificationHandle | None = None
        self.cancel_returned = False  # set right after a cancel of it returned
        self.self_cancelled = threading.Event()

    def callback(self, context: object, row: object, kind: object) -> None:
        if self.cancel_returned:
            self.stats.violation(f"{self.name}: callback after its cancel returned")
        self.stats.count("callbacks")
        handle = self.handle
        if self.self_cancel and handle is not None and not self.self_cancelled.is_set():
            handle.cancel()
            self.cancel_returned = True
            self.self_cancelled.set()

    def stable_callback(self, context: object, table: object) -> None:
        if self.cancel_returned:
            self.stats.violation(f"{self.name}: callback after its cancel returned")
        self.stats.count("stable_callbacks")


class Churn:
    def __init__(self, stats: Stats, leak: bool) -> None:
        self.stats = stats
        self.leak = leak
        self.leaked: list[object] = []

    def cycle(self, i: int) -> None:
        stats = self.stats
        family = FAMILIES[i % 3]
        initial = i % 2 == 1
        self_cancel = i % 4 == 3  # with the initial notification: a callback comes at once
        regs: list[Registration] = []
        for name, notify in LOW_LEVEL.items():
            reg = Registration(stats, name, self_cancel)
            reg.handle = notify(family, reg.callback, name, initial)
            regs.append(reg)
            stats.count(f"register_{name}")

        stable = Registration(stats, "stable", False)
        result = netnotify.notify_stable_unicast_ip_address_table(
            socket.AF_INET6 if i % 2 else socket.AF_INET, stable.stable_callback
        )
        if isinstance(result, list):
            stats.count("stable_table_now")
        else:
            stable.handle = result
            stats.count("stable_handle")

        try:
            netnotify.notify_teredo_port_change(lambda context, port, kind: None, None, initial)
        except netnotify.NotSupportedError:
            stats.count("teredo_not_supported")
        else:
            stats.errors.append("notify_teredo_port_change succeeded on Linux")

        watcher_reg = Registration(stats, "watch", False)
        watcher_closed_inside = threading.Event()
        made: list[netnotify.Watcher] = []  # snapshot events come before watch() returns

        def on_event(event: netnotify.Event) -> None:
            if watcher_reg.cancel_returned:
                stats.violation("watch: callback after close() returned")
            stats.count("watch_events")
            if self_cancel and made and not watcher_closed_inside.is_set():
                made[0].close()
                watcher_reg.cancel_returned = True
                watcher_closed_inside.set()

        snapshot = i % 3 == 0
        queued = i % 2 == 0
        watcher: netnotify.Watcher = netnotify.watch(
            "interface",
            "address",
            "route",
            family=family,
            snapshot=snapshot,
            callback=None if queued else on_event,
        )
        made.append(watcher)
        stats.count("watch")
        if queued:
            drained = 0
            try:
                while drained < 50:
                    watcher.get(timeout=0)
                    drained += 1
            except TimeoutError:
                pass
            stats.count("watch_events", drained)

        if self_cancel:
            deadline = time.monotonic() + SELF_CANCEL_WAIT
            for reg in regs:
                if reg.self_cancelled.wait(max(0.0, deadline - time.monotonic())):
                    stats.count("self_cancelled")
                else:
                    stats.count("self_cancel_missed")
            if not queued and watcher_closed_inside.wait(max(0.0, deadline - time.monotonic())):
                stats.count("watch_closed_inside")

        for n, reg in enumerate(regs):
            handle = reg.handle
            assert handle is not None
            how = (i + n) % 3
            if how == 0 and not reg.self_cancelled.is_set():
                netnotify.cancel_mib_change_notify2(handle)
            elif how == 1:
                with handle:
                    pass
            else:
                handle.cancel()
            reg.cancel_returned = True
            if handle.active:
                stats.errors.append(f"{reg.name}: still active after cancel")
        if stable.handle is not None:
            stable.handle.cancel()
            stable.cancel_returned = True
        watcher.close()
        watcher_reg.cancel_returned = True
        if self.leak:
            self.leaked.append((regs, stable, watcher, on_event))


def settle(baseline: stresslib.Checkpoint) -> bool:
    """Waits until fds and threads are back to the baseline (the dispatcher closes sockets after a cancel)."""
    return stresslib.wait_for(
        lambda: (
            stresslib.open_fds() <= baseline.fds and stresslib.proc_status()["Threads"] <= baseline.threads
        ),
        SETTLE_WAIT,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="generator: ip commands a second")
    parser.add_argument("--warmup", type=int, default=0, help="cycles before the baseline (default: a tenth)")
    parser.add_argument("--max-object-growth", type=int, default=100, help="gc objects, warm-up to end")
    parser.add_argument("--max-block-growth", type=int, default=500, help="allocated blocks, warm-up to end")
    parser.add_argument("--max-rss-growth-kib", type=int, default=2048, help="VmRSS, warm-up to end")
    parser.add_argument("--leak", action="store_true", help="keep every cycle's objects (must fail)")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    warmup = args.warmup or max(20, args.cycles // 10)
    if args.cycles <= warmup:
        parser.error("--cycles must be larger than the warm-up")

    stresslib.enter_private_netns()
    stresslib.prepare_links()
    stats = Stats()
    churn = Churn(stats, args.leak)
    unraisable: list[str] = []
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
    checkpoints: list[stresslib.Checkpoint] = []
    failures: list[str] = []
    started = time.monotonic()
    every = max(1, (args.cycles - warmup) // 10)
    with stresslib.Flood(args.rate):
        flowing = threading.Event()
        with netnotify.notify_route_change2(socket.AF_UNSPEC, lambda c, r, k: flowing.set()):
            if not flowing.wait(10):
                failures.append("the generator made no route change within 10 s")
        for i in range(args.cycles):
            try:
                churn.cycle(i)
            except Exception as exc:
                stats.errors.append(f"cycle {i}: {type(exc).__name__}: {exc}")
                if len(stats.errors) > 20:
                    break
            done = i + 1
            if done == warmup:
                time.sleep(0.2)
                checkpoints.append(stresslib.Checkpoint.take(done, started))
            elif done > warmup and ((done - warmup) % every == 0 or done == args.cycles):
                if not settle(checkpoints[0]):
                    failures.append(f"cycle {done}: fds or threads did not return to the warm-up figures")
                checkpoints.append(stresslib.Checkpoint.take(done, started))
    elapsed = time.monotonic() - started

    if len(checkpoints) < 2:
        failures.append("the run ended before its second checkpoint")
    else:
        first, last = checkpoints[0], checkpoints[-1]
        growth = {
            "gc_objects": last.gc_objects - first.gc_objects,
            "allocated_blocks": last.allocated_blocks - first.allocated_blocks,
            "rss_kib": last.rss_kib - first.rss_kib,
            "fds": last.fds - first.fds,
            "threads": last.threads - first.threads,
        }
        bounds = {
            "gc_objects": args.max_object_growth,
            "allocated_blocks": args.max_block_growth,
            "rss_kib": args.max_rss_growth_kib,
            "fds": 0,
            "threads": 0,
        }
        for what, bound in bounds.items():
            if growth[what] > bound:
                failures.append(f"{what} grew by {growth[what]} (bound {bound})")
    if stats.violations:
        failures.append(f"{stats.counts['violations']} callback(s) after cancel: {stats.violations}")
    if stats.errors:
        failures.append(f"unexpected errors: {stats.errors}")
    if unraisable:
        failures.append(f"unraisable exceptions: {unraisable[:10]}")
    report: dict[str, Any] = {
        "cycles": args.cycles,
        "warmup": warmup,
        "rate": args.rate,
        "seconds": round(elapsed, 1),
        "counts": dict(sorted(stats.counts.items())),
        "checkpoints": [c.as_dict() for c in checkpoints],
        "growth": growth if len(checkpoints) >= 2 else None,
        "failures": failures,
    }
    line = json.dumps(report)
    if args.json is not None:
        args.json.write_text(line + "\n")
    print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
