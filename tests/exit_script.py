"""Run by test_shutdown.py, inside the test's network namespace: ends the interpreter with registrations live.

    python exit_script.py churn     registrations of every kind while a thread keeps changing routes
    python exit_script.py sleeping  a callback sleeps when the main thread ends: exit must wait for it

Prints "ready <time.monotonic()>" when the main thread is about to end, and "late-notify: <outcome>" from an
atexit hook that runs after netnotify's own (atexit runs hooks in reverse order of registration).
"""

from __future__ import annotations

import atexit
import socket
import sys
import threading
import time
from typing import Any


def late_notify() -> None:
    import netnotify

    try:
        netnotify.notify_route_change2(socket.AF_UNSPEC, lambda context, row, kind: None)
    except Exception as exc:
        print(f"late-notify: {type(exc).__name__}")
    else:
        print("late-notify: registered")


atexit.register(late_notify)  # before netnotify is imported, so it runs after netnotify's hook

import nettest  # noqa: E402

import netnotify  # noqa: E402


def keep_changing_routes() -> None:
    n = 0
    try:
        while True:
            nettest.ip(f"route replace 10.77.{n % 250}.0/24 via 10.9.0.2 dev v0")
            n += 1
    except BaseException:  # the interpreter is going away under this daemon thread
        return


def churn() -> threading.Event:
    seen = threading.Event()

    def callback(context: object, row: Any, kind: netnotify.MibNotificationType) -> None:
        seen.set()

    for notify in nettest.NOTIFY.values():
        notify(socket.AF_UNSPEC, callback)  # handles dropped: registrations live on until exit
    nettest.NetNS().veth("v2", "v3", up=True, link_local=False)
    nettest.ip("addr add 2001:db8:77::1/64 dev v2")  # tentative: the stable-table wait is pending at exit
    netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, lambda context, table: None)
    threading.Thread(target=keep_changing_routes, daemon=True).start()
    return seen


def sleeping() -> threading.Event:
    started = threading.Event()

    def callback(context: object, row: Any, kind: netnotify.MibNotificationType) -> None:
        if not started.is_set():
            print("callback-start")
            started.set()
            time.sleep(2)
            print("callback-end")

    netnotify.notify_route_change2(socket.AF_INET, callback)
    nettest.ip("route add 10.78.0.0/24 via 10.9.0.2 dev v0")
    return started


def main(mode: str) -> int:
    nettest.Lan.create(nettest.NetNS())
    called = {"churn": churn, "sleeping": sleeping}[mode]()
    if not called.wait(5):
        print("no callback came")
        return 3
    print(f"ready {time.monotonic()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
