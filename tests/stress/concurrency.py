"""Concurrency: threads register, cancel, complete rows and read tables at random while changes flow.

    python tests/stress/concurrency.py [--threads 8] [--seconds 60] [--rate 2000] [--json FILE]

Runs in a private network namespace of its own (root needed), with flood.py changing routes, addresses and
links. Each thread, until the time is up, picks at random: register (any kind: interface, address, route,
stable table, Teredo, or a watch() with a callback or a queue; families, initial notifications and "may cancel
itself from inside its callback" chosen at random), cancel a live registration (any thread's; sometimes one
that another thread may be cancelling too; by cancel_mib_change_notify2(), handle.cancel(), a `with` exit or
Watcher.close()), complete a row that some callback received with its Get*Entry call, read a table, or convert
an interface index, LUID and name. Callbacks store their rows, sometimes complete one themselves, and rarely
register a new registration from inside the callback.

Checked:
- no deadlock: a faulthandler watchdog dumps every thread and exits 1 if the run overstays by --grace seconds;
  every worker must end within --grace seconds of the deadline;
- every cancel returns, within --cancel-bound seconds;
- no callback of a registration runs after a cancel of it returned. Each registration has a tracker. The
  thread that cancelled sets `cancel_returned_ns` (time.monotonic_ns()) right after the cancel returned; a
  cancel_mib_change_notify2() that raised InvalidHandleError (a second cancel) does not wait, so it sets
  nothing. Every callback reads the tracker when it starts and again before it returns: a start with the mark
  set is a callback after cancel, and an end with it set means cancel returned while this callback still ran.
  The reads and writes are single attribute accesses (atomic in CPython), so the checker takes no lock that
  could serialise the library's threads. It cannot false-alarm: a callback that started before cancel
  returned ends before it (cancel waits for it), so both its reads precede the mark. A late start inside the
  nanoseconds between cancel's return and the mark would escape the flag, so the callbacks also record their
  last start and end times and the run compares them with the mark at the end: any start or end after the
  mark is a violation. A cancel from inside the callback is held to its own contract: no callback of that
  registration starts after it returned (the current one may finish). A stable-table callback runs at most
  once.

--broken-cancel sets the mark just before calling cancel (as if cancel returned early): the checker must then
report violations. Tests use it to show the checker can fail.

The last line of standard output is a JSON report (also written to --json); exit code 0 when every check
passed.
"""

from __future__ import annotations

import argparse
import collections
import errno
import faulthandler
import json
import os
import random
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
MAX_LIVE = 40  # live registrations at most: each one costs the dispatcher a socket to read
ENTRY: dict[str, Callable[[Any], Any]] = {
    "interface": netnotify.get_ip_interface_entry,
    "address": netnotify.get_unicast_ip_address_entry,
    "route": netnotify.get_ip_forward_entry2,
}
TABLES: tuple[Callable[[int], Any], ...] = (
    netnotify.get_ip_interface_table,
    netnotify.get_unicast_ip_address_table,
    netnotify.get_ip_forward_table2,
)


def expected(exc: BaseException) -> bool:
    """Errors an operation may meet while the network changes under it."""
    if isinstance(exc, netnotify.NotFoundError):
        return True  # the object went away between the callback and the Get*Entry / conversion
    # if_indextoname() of an interface deleted since its LUID was checked
    return isinstance(exc, netnotify.NetioError) and exc.errno == errno.ENODEV


class Tracker:
    """One registration (or watcher) and what its callbacks saw; see the module docstring."""

    __slots__ = (
        "calls",
        "cancel_returned_ns",
        "handle",
        "kind",
        "last_end_ns",
        "last_start_ns",
        "may_self_cancel",
        "self_cancel_returned_ns",
        "self_cancel_start_ns",
        "watcher",
    )

    def __init__(self, kind: str, may_self_cancel: bool) -> None:
        self.kind = kind
        self.may_self_cancel = may_self_cancel
        self.handle: netnotify.NotificationHandle | None = None
        self.watcher: netnotify.Watcher | None = None
        self.cancel_returned_ns = 0
        self.self_cancel_returned_ns = 0
        self.self_cancel_start_ns = 0
        self.last_start_ns = 0
        self.last_end_ns = 0
        self.calls = 0


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pool: list[Tracker] = []
        self.pool_lock = threading.Lock()
        self.trackers: list[Tracker] = []  # every tracker ever made (appended under pool_lock)
        self.rows: collections.deque[tuple[str, Any]] = collections.deque(maxlen=512)
        self.stats_lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.cancel_seconds: list[float] = []
        self.slow_cancels: list[tuple[float, str]] = []  # (seconds, what), the slowest few
        self.callback_rng = random.Random(args.seed)  # used by callbacks only

    # ------------------------------------------------------------------ bookkeeping

    def count(self, what: str) -> None:
        with self.stats_lock:
            self.counts[what] += 1

    def violation(self, what: str) -> None:
        with self.stats_lock:
            self.counts["violations"] += 1
            if len(self.violations) < 30:
                self.violations.append(what)

    def error(self, what: str, exc: BaseException) -> None:
        with self.stats_lock:
            self.counts["unexpected_errors"] += 1
            if len(self.errors) < 30:
                self.errors.append(f"{what}: {type(exc).__name__}: {exc}")

    def add(self, tracker: Tracker) -> None:
        with self.pool_lock:
            self.pool.append(tracker)
            self.trackers.append(tracker)

    # ------------------------------------------------------------------ callbacks

    def enter(self, t: Tracker) -> int:
        start = time.monotonic_ns()
        if t.cancel_returned_ns or t.self_cancel_returned_ns:
            self.violation(f"{t.kind}: a callback started after its cancel returned")
        t.last_start_ns = start
        t.calls += 1
        return start

    def leave(self, t: Tracker) -> None:
        if t.cancel_returned_ns:
            self.violation(f"{t.kind}: cancel returned while its callback was running")
        t.last_end_ns = time.monotonic_ns()

    def maybe_self_cancel(self, t: Tracker, start: int) -> None:
        if not t.may_self_cancel or self.callback_rng.random() >= 0.2:
            return
        if t.watcher is not None:
            t.watcher.close()
        elif t.handle is not None:
            t.handle.cancel()
        else:
            return  # the initial notification came before notify_*() returned the handle
        if not t.self_cancel_returned_ns:
            t.self_cancel_start_ns = start
            t.self_cancel_returned_ns = time.monotonic_ns()
        self.count("self_cancels")

    def row_callback(self, t: Tracker) -> Callable[[object, Any, object], None]:
        def callback(context: object, row: Any, notification_type: object) -> None:
            start = self.enter(t)
            try:
                self.count("callbacks")
                if row is not None:
                    self.rows.append((t.kind, row))
                    r = self.callback_rng.random()
                    if r < 0.05:  # complete the row from inside the callback, as Windows programs do
                        self.complete(t.kind, row, "callback_entries")
                    elif r < 0.06 and len(self.pool) < MAX_LIVE:  # register from inside a callback
                        self.register(self.callback_rng, "callback_registers")
                self.maybe_self_cancel(t, start)
            except Exception as exc:
                self.error(f"{t.kind} callback", exc)
            finally:
                self.leave(t)

        return callback

    def stable_callback(self, t: Tracker) -> Callable[[object, Any], None]:
        def callback(context: object, table: Any) -> None:
            self.enter(t)
            self.count("stable_callbacks")
            if t.calls > 1:
                self.violation("stable: a second callback")
            self.leave(t)

        return callback

    def watch_callback(self, t: Tracker) -> Callable[[netnotify.Event], None]:
        def callback(event: netnotify.Event) -> None:
            start = self.enter(t)
            try:
                self.count("watch_events")
                self.maybe_self_cancel(t, start)
            except Exception as exc:
                self.error("watch callback", exc)
            finally:
                self.leave(t)

        return callback

    # ------------------------------------------------------------------ operations

    def register(self, rng: random.Random, counter: str = "registers") -> None:
        kind = rng.choice(("interface", "address", "route", "stable", "teredo", "watch", "watch_queue"))
        family = rng.choice(FAMILIES)
        t = Tracker(kind, may_self_cancel=rng.random() < 0.3)
        try:
            if kind in LOW_LEVEL:
                t.handle = LOW_LEVEL[kind](family, self.row_callback(t), None, rng.random() < 0.5)
            elif kind == "stable":
                result = netnotify.notify_stable_unicast_ip_address_table(family, self.stable_callback(t))
                if isinstance(result, list):
                    self.count("stable_table_now")
                    return
                t.handle = result
            elif kind == "teredo":
                try:
                    netnotify.notify_teredo_port_change(lambda c, p, k: None)
                except netnotify.NotSupportedError:
                    self.count("teredo_not_supported")
                    return
                raise AssertionError("notify_teredo_port_change succeeded on Linux")
            else:
                kinds = rng.sample(("interface", "address", "route"), rng.randint(1, 3))
                t.watcher = netnotify.watch(
                    *kinds,
                    family=family,
                    snapshot=rng.random() < 0.3,
                    callback=self.watch_callback(t) if kind == "watch" else None,
                )
        except Exception as exc:
            self.error(f"register {kind}", exc)
            return
        self.count(counter)
        self.add(t)

    def cancel(self, rng: random.Random, t: Tracker | None = None) -> None:
        if t is None:
            with self.pool_lock:
                if not self.pool:
                    return
                index = rng.randrange(len(self.pool))
                # Sometimes leave it in the pool: another thread may cancel it at the same time.
                t = self.pool[index] if rng.random() < 0.1 else self.pool.pop(index)
        how = rng.choice(("strict", "method", "with"))
        if self.args.broken_cancel and not t.cancel_returned_ns:
            t.cancel_returned_ns = time.monotonic_ns()  # deliberately wrong: before cancel returns
        started = time.monotonic()
        try:
            if t.watcher is not None:
                t.watcher.close()
            elif t.handle is not None and how == "strict":
                netnotify.cancel_mib_change_notify2(t.handle)
            elif t.handle is not None and how == "with":
                with t.handle:
                    pass
            elif t.handle is not None:
                t.handle.cancel()
        except netnotify.InvalidHandleError:
            # A second cancel_mib_change_notify2(): it does not wait for the first, so it marks nothing.
            self.count("second_strict_cancels")
        except Exception as exc:
            self.error("cancel", exc)
        else:
            returned = time.monotonic_ns()
            if not t.cancel_returned_ns or returned < t.cancel_returned_ns:
                t.cancel_returned_ns = returned
            self.count("cancels")
        finally:
            elapsed = time.monotonic() - started
            with self.stats_lock:
                self.cancel_seconds.append(elapsed)
                what = "close" if t.watcher is not None else how
                self.slow_cancels = sorted([*self.slow_cancels, (elapsed, f"{t.kind} {what}")])[-5:]
            if elapsed > self.args.cancel_bound:
                self.violation(f"{t.kind}: cancel took {elapsed:.2f} s")

    def complete(self, kind: str, row: Any, counter: str = "entries") -> None:
        try:
            ENTRY[kind](row)
        except Exception as exc:
            if not expected(exc):
                self.error(f"get entry ({kind})", exc)
                return
            self.count("entries_gone")
        self.count(counter)

    def op_entry(self, rng: random.Random) -> None:
        try:
            kind, row = self.rows[rng.randrange(len(self.rows))]
        except (IndexError, ValueError):
            return
        self.complete(kind, row)

    def op_table(self, rng: random.Random) -> None:
        try:
            rng.choice(TABLES)(rng.choice(FAMILIES))
        except Exception as exc:
            self.error("get table", exc)
            return
        self.count("tables")

    def op_convert(self, rng: random.Random) -> None:
        try:
            _, row = self.rows[rng.randrange(len(self.rows))]
        except (IndexError, ValueError):
            return
        try:
            luid = netnotify.convert_interface_index_to_luid(row.interface_index)
            netnotify.convert_interface_luid_to_index(luid)
            name = netnotify.convert_interface_luid_to_name(luid)
            netnotify.convert_interface_name_to_luid(name)
        except Exception as exc:
            if not expected(exc):
                self.error("convert", exc)
                return
            self.count("conversions_gone")
        self.count("conversions")

    def worker(self, n: int, deadline: float) -> None:
        rng = random.Random(self.args.seed * 1000 + n)
        ops: list[Callable[[random.Random], None]] = [
            self.register,
            self.cancel,
            self.op_entry,
            self.op_table,
            self.op_convert,
        ]
        weights = [30, 25, 20, 15, 10]
        try:
            while time.monotonic() < deadline:
                op = rng.choices(ops, weights)[0]
                if op == self.register and len(self.pool) >= MAX_LIVE:
                    op = self.cancel
                op(rng)
        except BaseException as exc:
            self.error(f"worker {n}", exc)

    # ------------------------------------------------------------------ the end

    def check_times(self) -> None:
        """The post-hoc half of the checker: compares the callbacks' times with the cancel marks."""
        for t in self.trackers:
            if t.cancel_returned_ns and t.last_start_ns > t.cancel_returned_ns:
                self.violation(f"{t.kind}: its last callback started after its cancel returned")
            if t.cancel_returned_ns and t.last_end_ns > t.cancel_returned_ns:
                self.violation(f"{t.kind}: its last callback ended after its cancel returned")
            if t.self_cancel_returned_ns and t.last_start_ns > t.self_cancel_start_ns:
                self.violation(f"{t.kind}: a callback started after a cancel from inside a callback")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="generator: ip commands a second")
    parser.add_argument("--cancel-bound", type=float, default=5.0, help="seconds a cancel may take")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds past the end before it is a hang")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broken-cancel", action="store_true", help="mark cancels early (must fail)")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    stresslib.enter_private_netns()
    stresslib.prepare_links()
    # The watchdog needs no GIL: a deadlock that holds it still ends the run, with every thread's stack.
    faulthandler.dump_traceback_later(args.seconds + 2 * args.grace, exit=True)
    run = Run(args)
    unraisable: list[str] = []
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
    failures: list[str] = []
    started = time.monotonic()
    with stresslib.Flood(args.rate):
        flowing = threading.Event()
        with netnotify.notify_route_change2(socket.AF_UNSPEC, lambda c, r, k: flowing.set()):
            if not flowing.wait(10):
                failures.append("the generator made no route change within 10 s")
        deadline = time.monotonic() + args.seconds
        workers = [
            threading.Thread(target=run.worker, args=(n, deadline), name=f"worker-{n}", daemon=True)
            for n in range(args.threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, deadline + args.grace - time.monotonic()))
        hung = [worker.name for worker in workers if worker.is_alive()]
        if hung:
            print(f"workers still running {args.grace} s after the deadline: {hung}", file=sys.stderr)
            faulthandler.dump_traceback(all_threads=True)
            os._exit(3)
        # Cancel what is left, then give a late callback time to show itself.
        rng = random.Random(args.seed)
        with run.pool_lock:
            left, run.pool = run.pool, []
        for t in left:
            run.cancel(rng, t)
        time.sleep(0.5)
    faulthandler.cancel_dump_traceback_later()
    elapsed = time.monotonic() - started
    run.check_times()
    if run.violations:
        failures.append(f"{run.counts['violations']} violation(s): {run.violations}")
    if run.errors:
        failures.append(f"{run.counts['unexpected_errors']} unexpected error(s): {run.errors}")
    if unraisable:
        failures.append(f"{len(unraisable)} unraisable exception(s): {unraisable[:10]}")
    if run.counts["callbacks"] == 0:
        failures.append("no callback ran: the run proved nothing")
    cancels = sorted(run.cancel_seconds)
    report: dict[str, Any] = {
        "threads": args.threads,
        "seconds": args.seconds,
        "rate": args.rate,
        "elapsed": round(elapsed, 1),
        "registrations": len(run.trackers),
        "counts": dict(sorted(run.counts.items())),
        "cancel_max_ms": round(1000 * cancels[-1], 2) if cancels else None,
        "cancel_median_ms": round(1000 * cancels[len(cancels) // 2], 3) if cancels else None,
        "cancel_p999_ms": round(1000 * cancels[len(cancels) * 999 // 1000], 2) if cancels else None,
        "slowest_cancels": [f"{what}: {1000 * seconds:.1f} ms" for seconds, what in run.slow_cancels],
        "failures": failures,
    }
    line = json.dumps(report)
    if args.json is not None:
        args.json.write_text(line + "\n")
    print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
