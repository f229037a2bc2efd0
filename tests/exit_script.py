"""Run by test_shutdown.py, inside the test's network namespace: ends the interpreter with registrations live.

    python exit_script.py churn     registrations of every kind while a thread keeps changing routes
    python exit_script.py sleeping  a callback sleeps when the main thread ends: exit must wait for it

and, each in a private network namespace of its own (so that tests/stress/shutdown.py can run them over and
over), with registrations of every kind live while flood.py floods route, address and link changes:

    python exit_script.py normal     the main thread returns: exit code 0
    python exit_script.py sys_exit   sys.exit(3): exit code 3
    python exit_script.py exception  an unhandled exception: exit code 1, its traceback on stderr
    python exit_script.py sigint     a callback sends the process SIGINT and keeps running while the main
                                     thread gets KeyboardInterrupt: killed by SIGINT (CPython's convention)

Prints "ready <time.monotonic()>" when the process starts to end (the main thread is about to end, or the
signal is sent), and "late-notify: <outcome>" from an atexit hook that runs after netnotify's own (atexit runs
hooks in reverse order of registration).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
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

assert sys.platform == "linux", "it changes the network in namespaces: Linux only"  # mypy: Linux only


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


EXIT_MODES = ("normal", "sys_exit", "exception", "sigint")


def flooded(mode: str) -> int:
    """Registrations of every kind live, changes flooding in, then the process ends as `mode` says."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "stress"))
    import stresslib

    stresslib.enter_private_netns()
    stresslib.prepare_links()
    seen: dict[str, threading.Event] = {kind: threading.Event() for kind in ("interface", "address", "route")}
    seen["watch"] = threading.Event()
    interrupt = threading.Event()

    def row_callback(kind: str) -> Any:
        def callback(context: object, row: Any, notification_type: netnotify.MibNotificationType) -> None:
            seen[kind].set()
            if kind == "route" and interrupt.is_set():
                interrupt.clear()
                print(f"ready {time.monotonic()}")
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # still delivering while the main thread handles the signal

        return callback

    for n, (kind, notify) in enumerate(nettest.NOTIFY.items()):
        notify(socket.AF_UNSPEC, row_callback(kind), None, n % 2 == 0)  # handles dropped: live until exit
    netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, lambda context, table: None)
    netnotify.watch(callback=lambda event: seen["watch"].set())
    netnotify.watch("route", snapshot=True)  # queued, never read
    stresslib.Flood(rate=2000)  # ends when this process does (end of file on its standard input)
    for kind, event in seen.items():
        if not event.wait(10):
            print(f"no {kind} callback came")
            return 4
    if mode == "sigint":
        interrupt.set()
        while True:  # KeyboardInterrupt ends this
            time.sleep(0.01)
    print(f"ready {time.monotonic()}")
    if mode == "sys_exit":
        sys.exit(3)
    if mode == "exception":
        raise RuntimeError("unhandled, on purpose")
    return 0


def main(mode: str) -> int:
    if mode in EXIT_MODES:
        return flooded(mode)
    nettest.Lan.create(nettest.NetNS())
    called = {"churn": churn, "sleeping": sleeping}[mode]()
    if not called.wait(5):
        print("no callback came")
        return 3
    print(f"ready {time.monotonic()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
