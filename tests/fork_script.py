"""Run by test_fork.py: forks while registrations of every kind are live and changes flow.

    python fork_script.py os_exit         fork several times; each child ends with os._exit(0)
    python fork_script.py sys_exit        the child ends with sys.exit(0): atexit hooks, netnotify's included
    python fork_script.py cancelling      fork while another thread is inside cancel(), waiting for a callback
    python fork_script.py self_cancelled  the same, after that callback cancelled its own registration
    python fork_script.py watcher_busy    fork while a watch() callback runs (it blocks) in the parent
    python fork_script.py multiprocessing a multiprocessing Process with the "fork" start method

The script makes a private network namespace of its own, with flood.py changing routes, addresses and links.
The parent's callbacks note os.getpid(): a call in a child is written into a pipe that the parent reads (a
callback that ran in a child is never lost, even if the child crashes). Each child sends a JSON report of what
it saw through a pipe of its own; the parent prints one JSON line: {"parent": ..., "children": [...],
"calls_in_children": [...]}. A child that hangs is ended by its faulthandler watchdog (exit code 1, stacks on
stderr).
"""

from __future__ import annotations

import collections
import faulthandler
import json
import multiprocessing
import os
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "stress"))
import stresslib

import netnotify

assert sys.platform == "linux", "fork() in a network namespace: Linux only"  # mypy: the rest is Linux

# Python 3.12+ warns that fork() in a process with threads may deadlock the child; the test is about exactly
# that situation (netnotify's dispatcher thread is one of them).
warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*fork\(\).*")

PARENT = os.getpid()
CHILD_WATCHDOG = 30.0  # seconds a child may take before it counts as hung
KINDS = ("interface", "address", "route", "watch")


class Parent:
    """The parent's registrations of every kind; their callbacks report any call in another process."""

    def __init__(self, report_fd: int) -> None:
        self.report_fd = report_fd
        self.counts: collections.Counter[str] = collections.Counter()
        self.handles: dict[str, netnotify.NotificationHandle] = {}
        family = socket.AF_UNSPEC
        self.handles["interface"] = netnotify.notify_ip_interface_change(family, self.row_cb("interface"))
        self.handles["address"] = netnotify.notify_unicast_ip_address_change(family, self.row_cb("address"))
        self.handles["route"] = netnotify.notify_route_change2(family, self.row_cb("route"), None, True)
        # Never cancelled by a child: released by the child's exit hook (sys_exit), or not at all (os._exit).
        self.handles["spare"] = netnotify.notify_route_change2(socket.AF_INET, self.row_cb("spare"))
        stable = netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, self.stable_cb)
        # flood.py keeps IPv6 addresses tentative: the stable-table registration usually waits
        self.stable = stable if isinstance(stable, netnotify.NotificationHandle) else None
        self.watcher = netnotify.watch("interface", "address", "route", callback=self.watch_cb)
        self.watchers: list[netnotify.Watcher] = []  # more, that some modes fork with

    def note(self, kind: str) -> None:
        if os.getpid() != PARENT:
            os.write(self.report_fd, f"{kind} {os.getpid()}\n".encode())
        else:
            self.counts[kind] += 1

    def row_cb(self, kind: str) -> Any:
        return lambda context, row, notification_type: self.note(kind)

    def stable_cb(self, context: object, table: object) -> None:
        self.note("stable")

    def watch_cb(self, event: netnotify.Event) -> None:
        self.note("watch")

    def wait_flowing(self, timeout: float = 10.0) -> None:
        base = dict(self.counts)
        if not stresslib.wait_for(
            lambda: all(self.counts[kind] > base.get(kind, 0) for kind in KINDS), timeout
        ):
            raise SystemExit(f"changes do not flow to every registration: {dict(self.counts)}")


def new_registrations_work() -> dict[str, Any]:
    """In a child: registrations made there get real changes (flood.py's), on a dispatcher of its own."""
    got: collections.Counter[str] = collections.Counter()
    route = netnotify.notify_route_change2(socket.AF_UNSPEC, lambda c, r, k: got.update(["route"]))
    watcher = netnotify.watch("address", callback=lambda event: got.update(["watch"]))
    ok = stresslib.wait_for(lambda: got["route"] > 0 and got["watch"] > 0, 10)
    route.cancel()
    watcher.close()
    return {"new_registrations_called": ok, "new_calls": dict(got)}


def child_checks(parent: Parent, seconds: float) -> dict[str, Any]:
    """What a child sees of the parent's registrations, and whether it can use netnotify itself."""
    result: dict[str, Any] = {"pid": os.getpid()}
    result["inherited_active"] = {kind: h.active for kind, h in parent.handles.items()}
    result["inherited_watchers_closed"] = [w.closed for w in [parent.watcher, *parent.watchers]]
    time.sleep(seconds)  # changes keep flowing: no parent callback may run here
    result.update(new_registrations_work())
    # The parent's handles in the child: every form of cancel returns at once.
    started = time.monotonic()
    parent.handles["interface"].cancel()
    with parent.handles["address"]:
        pass
    netnotify.cancel_mib_change_notify2(parent.handles["route"])
    try:
        netnotify.cancel_mib_change_notify2(parent.handles["route"])
    except netnotify.InvalidHandleError:
        result["second_strict_cancel"] = "InvalidHandleError"
    if parent.stable is not None:
        parent.stable.cancel()
    parent.watcher.close()
    if "blocked" in parent.handles:  # the parent was inside cancel() of it when it forked
        parent.handles["blocked"].cancel()
    result["inherited_queued_events"] = 0
    for watcher in parent.watchers:
        try:
            while True:  # what was queued at the fork can still be taken, then the watcher ends
                watcher.get(timeout=5)
                result["inherited_queued_events"] += 1
        except netnotify.WatcherClosed:
            result["inherited_queued_end"] = "WatcherClosed"
        except TypeError:
            pass  # a watcher with a callback cannot be iterated
        watcher.close()
    result["inherited_cancel_seconds"] = round(time.monotonic() - started, 4)
    result["inherited_active_after_cancel"] = {kind: h.active for kind, h in parent.handles.items()}
    return result


def fork_child(parent: Parent, seconds: float, end: str) -> tuple[int, int]:
    """Forks; the child runs child_checks and ends as `end` says. Returns (pid, read end of its report)."""
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid != 0:
        os.close(result_w)
        return pid, result_r
    # The child: never return into the parent's code.
    code = 0
    try:
        faulthandler.dump_traceback_later(CHILD_WATCHDOG, exit=True)
        os.close(result_r)
        result = child_checks(parent, seconds)
        if end == "sys_exit":
            # Left live: netnotify's exit hook cancels them.
            result["left_for_exit_hook"] = True
            netnotify.notify_route_change2(socket.AF_UNSPEC, lambda c, r, k: None)
            netnotify.watch("interface", callback=lambda event: None)
        os.write(result_w, json.dumps(result).encode())
        os.close(result_w)
    except BaseException as exc:
        print(f"child {os.getpid()}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 2
    if end == "sys_exit" and code == 0:
        faulthandler.cancel_dump_traceback_later()
        faulthandler.dump_traceback_later(CHILD_WATCHDOG, exit=True)  # also covers interpreter exit
        raise SystemExit(0)  # unwinds to the interpreter: atexit hooks run
    os._exit(code)


def reap(pid: int, result_fd: int, timeout: float = CHILD_WATCHDOG + 10) -> dict[str, Any]:
    chunks = []
    while chunk := os.read(result_fd, 65536):
        chunks.append(chunk)
    os.close(result_fd)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return {"pid": pid, "hung": True}
        time.sleep(0.01)
    report: dict[str, Any] = json.loads(b"".join(chunks)) if chunks else {"pid": pid}
    report["exit_code"] = os.waitstatus_to_exitcode(status)
    return report


def mp_child(queue: Any) -> None:
    faulthandler.dump_traceback_later(CHILD_WATCHDOG, exit=True)
    result = {"pid": os.getpid()}
    result.update(new_registrations_work())
    queue.put(result)


def fork_while_a_cancel_waits(parent: Parent, inside: bool) -> dict[str, Any]:
    """Forks while a callback blocks and a cancel() of its registration waits for it in another thread.

    inside=False: that thread is inside cancel(), waiting. inside=True: the callback cancelled itself first
    (that cancel has returned), and the other thread's cancel() waits for the callback to return."""
    entered, release = threading.Event(), threading.Event()
    holder: list[netnotify.NotificationHandle] = []

    def blocking(context: object, row: object, kind: object) -> None:
        if os.getpid() == PARENT and holder and not entered.is_set():
            if inside:
                holder[0].cancel()
            entered.set()
            release.wait(30)

    holder.append(netnotify.notify_route_change2(socket.AF_UNSPEC, blocking))
    if not entered.wait(10):
        raise SystemExit("the blocking callback did not run")
    canceller = threading.Thread(target=holder[0].cancel)
    canceller.start()
    time.sleep(0.2)  # the canceller now waits inside cancel()
    parent.handles["blocked"] = holder[0]
    pid, fd = fork_child(parent, 0.3, "os_exit")
    release.set()
    canceller.join(10)
    child = reap(pid, fd)
    child["canceller_in_parent_returned"] = not canceller.is_alive()
    del parent.handles["blocked"]
    parent.wait_flowing()
    return child


def fork_while_a_watcher_delivers(parent: Parent) -> dict[str, Any]:
    """Forks while the parent's watcher is delivering: its callback blocks, with the watcher's delivery
    marked as in progress by a thread (the dispatcher) that the child does not have."""
    entered, release = threading.Event(), threading.Event()
    queued: list[netnotify.Watcher] = []

    def blocking(event: netnotify.Event) -> None:
        if os.getpid() == PARENT and not entered.is_set():
            entered.set()
            release.wait(30)

    busy = netnotify.watch("route", callback=blocking)
    if not entered.wait(10):
        raise SystemExit("the blocking watcher callback did not run")
    queued.append(netnotify.watch("route", snapshot=True))  # queued, read by nobody: its snapshot waits
    time.sleep(0.2)
    parent.watchers = [busy, *queued]
    pid, fd = fork_child(parent, 0.3, "os_exit")
    release.set()
    child = reap(pid, fd)
    parent.watchers = []
    busy.close()
    for watcher in queued:
        watcher.close()
    parent.wait_flowing()
    return child


def main(mode: str) -> int:
    stresslib.enter_private_netns()
    stresslib.prepare_links()
    report_r, report_w = os.pipe()
    flood = stresslib.Flood(rate=1000)
    parent = Parent(report_w)
    parent.wait_flowing()
    children: list[dict[str, Any]] = []
    if mode in ("os_exit", "sys_exit"):
        for _ in range(5 if mode == "os_exit" else 2):
            pid, fd = fork_child(parent, 0.3, mode)
            children.append(reap(pid, fd))
            parent.wait_flowing()  # the parent keeps receiving after each fork
    elif mode in ("cancelling", "self_cancelled"):
        children.append(fork_while_a_cancel_waits(parent, inside=mode == "self_cancelled"))
    elif mode == "watcher_busy":
        children.append(fork_while_a_watcher_delivers(parent))
    else:
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=mp_child, args=(queue,))
        process.start()
        result = queue.get(timeout=CHILD_WATCHDOG)
        process.join(CHILD_WATCHDOG)
        result["exit_code"] = process.exitcode
        children.append(result)
        parent.wait_flowing()
    for handle in parent.handles.values():
        handle.cancel()
    if parent.stable is not None:
        parent.stable.cancel()
    parent.watcher.close()
    flood.stop()
    os.close(report_w)
    calls = os.read(report_r, 1 << 20).decode().split("\n")
    print(
        json.dumps(
            {
                "parent": dict(parent.counts),
                "children": children,
                "calls_in_children": [line for line in calls if line],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
