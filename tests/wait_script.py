"""Run by test_dispatcher_wait.py in the test's network namespace, in a fresh interpreter (so that no other
test's registration is live): how netnotify's Linux dispatcher waits, step by step.

With one registration it must sleep in the read of that registration's socket (recvmmsg); with two, in
epoll_wait; a registration made, or a cancel, while it sleeps in the read must wake it. Each step prints
"step <name> <outcome>" and one JSON line ends the run: the system call the dispatcher slept in after each
step (read from /proc/self/task/*/syscall) and what the callbacks saw.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import netnotify

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nettest import ip

# System call numbers (asm/unistd.h) of the architectures the tests run on.
SYSCALLS = {
    "x86_64": {299: "recvmmsg", 232: "epoll_wait", 281: "epoll_pwait", 441: "epoll_pwait2"},
    "aarch64": {243: "recvmmsg", 22: "epoll_pwait", 441: "epoll_pwait2"},
}


def sleeping_in() -> list[str]:
    """The system calls the process's other threads are blocked in (the dispatcher's among them)."""
    names = SYSCALLS[platform.machine()]
    found = []
    main = threading.get_native_id()
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == main:
            continue
        try:
            number = Path(f"/proc/self/task/{tid}/syscall").read_text().split()[0]
        except (OSError, IndexError):
            continue
        if number.lstrip("-").isdigit():
            found.append(names.get(int(number), f"syscall {number}"))
    return found


def settle_in(expected: str, timeout: float = 5.0) -> list[str]:
    """Waits until a thread sleeps in `expected`; returns what the threads sleep in."""
    deadline = time.monotonic() + timeout
    while True:
        now = sleeping_in()
        if any(name.startswith(expected) for name in now) or time.monotonic() > deadline:
            return now
        time.sleep(0.01)


class Seen:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[int, Any]] = []

    def __call__(self, context: object, row: Any, ntype: netnotify.MibNotificationType) -> None:
        with self.cond:
            self.events.append((int(ntype), row))
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(predicate(t, r) for t, r in self.events), timeout)


def main() -> None:
    report: dict[str, Any] = {}
    ip("link add wa0 type veth peer name wa1")
    ip("link set wa0 up")
    ip("link set wa1 up")
    ip("address add 10.77.0.1/24 dev wa0")

    routes = Seen()
    first = netnotify.notify_route_change2(socket.AF_INET, routes)
    report["one"] = settle_in("recvmmsg")

    # A second registration while the dispatcher sleeps in the first one's read: its initial notification
    # comes only if the registration woke the dispatcher (nothing else happens on the first one's socket).
    links = Seen()
    started = time.monotonic()
    second = netnotify.notify_ip_interface_change(socket.AF_UNSPEC, links, None, True)
    report["woken_for_a_registration"] = links.wait(lambda t, r: t == 3)
    report["initial_after_s"] = time.monotonic() - started
    report["two"] = settle_in("epoll")

    ip("link add wb0 type veth peer name wb1")
    index = socket.if_nametoindex("wb0")
    report["link_seen"] = links.wait(lambda t, r: t == 1 and r is not None and r.interface_index == index)
    ip("route add 10.78.0.0/16 via 10.77.0.2")
    report["route_seen"] = routes.wait(lambda t, r: t == 1 and str(r.destination_prefix) == "10.78.0.0/16")

    started = time.monotonic()
    second.cancel()
    report["cancel_second_s"] = time.monotonic() - started
    report["one_again"] = settle_in("recvmmsg")

    # A cancel while the dispatcher sleeps in the read of the registration cancelled.
    started = time.monotonic()
    first.cancel()
    report["cancel_first_s"] = time.monotonic() - started
    report["none"] = settle_in("epoll")
    ip("route del 10.78.0.0/16")
    time.sleep(0.3)
    report["after_cancel"] = [t for t, r in routes.events if t == 2]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
