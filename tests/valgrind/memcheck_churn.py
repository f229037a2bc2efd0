"""Registers and cancels every kind of registration while the network changes; the workload for Valgrind.

    unshare -n python tests/valgrind/memcheck_churn.py [--cycles N]      (as root; memcheck.py uses it)

It must run in a private network namespace (it refuses the namespace of its parent process and the
one named by NETNOTIFY_TEST_HOST_NETNS): it makes a veth pair there, and a thread keeps adding and
deleting routes, addresses and a second veth pair (with `ip -batch`) while the main thread, for each cycle:

- registers interface, address and route notifications for every family, with and without the initial
  notification, one of them with a tiny receive buffer (NETNOTIFY_RCVBUF) so that overflow repairs run; the
  callbacks complete rows with the Get*Entry calls, one raises (sys.unraisablehook), one cancels itself;
- waits for the stable unicast table (pending while a new IPv6 address is tentative), cancels or completes it;
- makes the calls that fail (Teredo, bad family, bad callback, double cancel, unknown rows and names);
- reads every table and completes some of its rows; converts LUIDs, indexes and names;
- runs watchers: snapshot, settle, bounded (overflowing) and latest backpressure, callback mode, asyncio,
  and a watch("teredo") that fails after registering its other kinds;
- cancels the registrations every way there is (cancel_mib_change_notify2, handle.cancel(), `with`, from the
  callback), and leaves some of the last cycle's live for the atexit hook.

It prints one JSON line of counts at the end (the caller checks that every kind of work happened).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import netnotify

FAMILIES = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)
NOTIFY: dict[str, Callable[..., netnotify.NotificationHandle]] = {
    "interface": netnotify.notify_ip_interface_change,
    "address": netnotify.notify_unicast_ip_address_change,
    "route": netnotify.notify_route_change2,
}
GET_ENTRY: dict[type, Callable[[Any], Any]] = {
    netnotify.MibIpInterfaceRow: netnotify.get_ip_interface_entry,
    netnotify.MibUnicastIpAddressRow: netnotify.get_unicast_ip_address_entry,
    netnotify.MibIpForwardRow2: netnotify.get_ip_forward_entry2,
}
EXPECTED_ERRORS = (netnotify.NetioError, TypeError, ValueError, OverflowError)

counts: Counter[str] = Counter()
counts_lock = threading.Lock()


def count(name: str, n: int = 1) -> None:
    with counts_lock:
        counts[name] += n


def netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def check_private_netns() -> None:
    """Refuses the namespace of the parent process (`unshare -n` made this one) and the session's own."""
    mine = netns_inode("/proc/self/ns/net")
    refused = {netns_inode(f"/proc/{os.getppid()}/ns/net")}
    if os.environ.get("NETNOTIFY_TEST_HOST_NETNS"):
        refused.add(int(os.environ["NETNOTIFY_TEST_HOST_NETNS"]))
    if mine in refused:
        sys.exit("memcheck_churn.py: refusing to change this network namespace; run it under `unshare -n`")


def netlink_drops() -> int:
    """Messages the kernel dropped on the netlink sockets of this namespace: the tiny buffer overflowed."""
    with open("/proc/net/netlink") as file:
        header, *rows = (line.split() for line in file)
    column = header.index("Drops")
    return sum(int(row[column]) for row in rows)


def ip(*commands: str) -> None:
    """Runs `ip` commands in one process (-batch); -force goes on past commands that fail."""
    subprocess.run(
        ["ip", "-force", "-batch", "-"],
        input="".join(f"{command}\n" for command in commands),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def setup() -> None:
    ip(
        "link set lo up",
        "link add v0 type veth peer name v1",
        "link set v0 up",
        "link set v1 up",
        "addr add 10.9.0.1/24 dev v0",
        "addr add 2001:db8:1::1/64 dev v0 nodad",
    )


def changer(stop: threading.Event) -> None:
    """Keeps the network changing: routes (a burst each round), addresses, a veth pair, an MTU."""
    n = 0
    while not stop.is_set():
        burst = [f"route add 10.77.{n % 4}.{i}/32 via 10.9.0.2" for i in range(30)]
        ip(
            *burst,
            f"route replace 10.78.{n % 8}.0/24 via 10.9.0.2 metric {n % 3}",
            f"route add 2001:db8:77:{n % 8}::/64 via 2001:db8:1::2",
            f"addr add 10.9.{1 + n % 8}.1/32 dev v0",
            f"addr add 2001:db8:2::{1 + n % 8}/128 dev v0 nodad",
            f"link set v0 mtu {1400 + n % 2 * 100}",
            f"link add vx{n % 2} type veth peer name vy{n % 2}",
            f"link set vx{n % 2} addrgenmode none",  # a link-local one would stay tentative (no carrier)
            f"link set vx{n % 2} up",
            *[line.replace("route add", "route del") for line in burst],
            f"route del 2001:db8:77:{(n + 4) % 8}::/64",
            f"addr del 10.9.{1 + (n + 4) % 8}.1/32 dev v0",
            f"addr del 2001:db8:2::{1 + (n + 4) % 8}/128 dev v0",
            f"link del vx{(n + 1) % 2}",
        )
        count("change_rounds")
        n += 1


def complete(row: Any) -> None:
    """Completes a row with its Get*Entry call (the object may be gone already)."""
    try:
        GET_ENTRY[type(row)](row)
        count("completed")
    except netnotify.NotFoundError:
        count("completed_gone")


class Callback:
    """A change callback: records, completes every third row; may raise, or cancel its own registration."""

    def __init__(self, kind: str, *, raises: bool = False, cancels_itself: bool = False) -> None:
        self.kind = kind
        self.raises = raises
        self.cancels_itself = cancels_itself
        self.calls = 0
        self.handle: netnotify.NotificationHandle | None = None

    def __call__(self, context: object, row: Any, notification_type: netnotify.MibNotificationType) -> None:
        self.calls += 1
        count(f"callback_{self.kind}")
        if row is None:
            count("initial_notifications")
        elif self.calls % 3 == 0:
            complete(row)
        if self.cancels_itself and self.calls >= 2 and self.handle is not None:
            self.handle.cancel()
            count("cancelled_from_callback")
        if self.raises and self.calls % 2 == 0:
            raise RuntimeError("churn: a callback that raises")


def register_all(cycle: int) -> list[netnotify.NotificationHandle]:
    handles = []
    for i, (kind, notify) in enumerate(NOTIFY.items()):
        for j, family in enumerate(FAMILIES):
            callback = Callback(kind, raises=(i + j) % 4 == 1, cancels_itself=(i + j + cycle) % 5 == 2)
            tiny = kind == "route" and family == socket.AF_INET
            if tiny:  # read when the registration opens its socket: every cycle repairs overflows
                os.environ["NETNOTIFY_RCVBUF"] = "4096"
            try:
                handle = notify(family, callback, {"cycle": cycle}, (cycle + j) % 2 == 0)
            finally:
                os.environ.pop("NETNOTIFY_RCVBUF", None)
            callback.handle = handle
            handles.append(handle)
            count("registered")
    return handles


def stable_table(cycle: int) -> netnotify.NotificationHandle | None:
    done = threading.Event()

    def on_stable(context: object, table: list[netnotify.MibUnicastIpAddressRow]) -> None:
        count("stable_callbacks")
        if table:
            complete(table[0])
        done.set()

    ip(f"addr add 2001:db8:3::{1 + cycle % 100}/128 dev v0")  # tentative (DAD) for a second or two
    result = netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, on_stable, cycle)
    if isinstance(result, list):
        count("stable_immediate")
        return None
    count("stable_pending")
    if cycle % 3 == 0:
        netnotify.cancel_mib_change_notify2(result)
        count("stable_cancelled")
        return None
    if cycle % 3 == 1:
        if done.wait(10):
            count("stable_completed")
        return None
    return result  # cancelled later, or left to the atexit hook


def failing_calls() -> None:
    calls: list[Callable[[], object]] = [
        lambda: netnotify.notify_teredo_port_change(lambda *args: None),
        netnotify.get_teredo_port,
        lambda: netnotify.notify_route_change2(12345, lambda *args: None),
        lambda: netnotify.notify_ip_interface_change(socket.AF_INET, "x"),  # type: ignore[call-overload]
        lambda: netnotify.notify_unicast_ip_address_change(2**70, lambda *args: None),
        lambda: netnotify.cancel_mib_change_notify2(None),  # type: ignore[arg-type]
        lambda: netnotify.get_ip_interface_entry(netnotify.MibIpInterfaceRow(family=socket.AF_INET6)),
        lambda: netnotify.get_ip_forward_entry2(netnotify.MibIpForwardRow2(interface_index=999)),
        lambda: netnotify.get_unicast_ip_address_entry(netnotify.MibUnicastIpAddressRow(interface_index=1)),
        lambda: netnotify.get_ip_forward_table2(7),
        lambda: netnotify.convert_interface_name_to_luid("no-such-link"),
        lambda: netnotify.convert_interface_luid_to_name(12345),
        lambda: netnotify.convert_interface_index_to_luid(2**40),
        lambda: netnotify.watch("teredo", "route"),  # registers "route", then fails on "teredo"
    ]
    for call in calls:
        try:
            call()
        except EXPECTED_ERRORS:
            count("expected_errors")
        else:
            count("calls_that_did_not_fail")
    handle = netnotify.notify_route_change2(socket.AF_INET, lambda *args: None)
    netnotify.cancel_mib_change_notify2(handle)
    try:
        netnotify.cancel_mib_change_notify2(handle)
    except netnotify.InvalidHandleError:
        count("expected_errors")


def tables(cycle: int) -> None:
    for family in (socket.AF_UNSPEC, FAMILIES[1 + cycle % 2]):
        for read in (
            netnotify.get_ip_interface_table,
            netnotify.get_unicast_ip_address_table,
            netnotify.get_ip_forward_table2,
        ):
            rows: list[Any] = read(family)
            count("table_rows", len(rows))
            for row in rows[:2]:
                complete(row)
    for index in (1, socket.if_nametoindex("v0")):
        luid = netnotify.convert_interface_index_to_luid(index)
        name = netnotify.convert_interface_luid_to_name(luid)
        if (
            netnotify.convert_interface_name_to_luid(name) != luid
            or netnotify.convert_interface_luid_to_index(luid) != index
        ):
            raise AssertionError(f"conversions disagree for interface {index}")
        count("conversions")


def take(watcher: netnotify.Watcher, n: int, timeout: float) -> None:
    for _ in range(n):
        try:
            watcher.get(timeout=timeout)
        except TimeoutError:
            return
        count("watch_events")


def watchers(cycle: int) -> None:
    with netnotify.watch(snapshot=True) as watcher:
        take(watcher, 20, 2.0)
    with netnotify.watch("route", "address", settle=0.05, ignore_lifetime_changes=True) as watcher:
        take(watcher, 5, 1.0)
    with netnotify.watch("route", family=socket.AF_INET, backpressure="bounded", maxsize=2) as watcher:
        time.sleep(0.5)  # the queue fills and overflows meanwhile
        take(watcher, 10, 1.0)
    with netnotify.watch("interface", "address", "route", backpressure="latest", snapshot=True) as watcher:
        take(watcher, 10, 1.0)
    with netnotify.watch("stable", family=socket.AF_INET6) as watcher:
        take(watcher, 1, 2.0)
    seen = threading.Event()

    def on_event(event: netnotify.Event) -> None:
        count("watch_callback_events")
        seen.set()

    callback_watcher = netnotify.watch("address", "route", callback=on_event, snapshot=cycle % 2 == 0)
    seen.wait(2.0)
    callback_watcher.close()
    if cycle % 2 == 0:
        asyncio.run(async_watch())


async def async_watch() -> None:
    async with netnotify.watch("route", "interface", snapshot=True) as watcher:
        for _ in range(10):
            try:
                await watcher.aget(timeout=1.0)
            except TimeoutError:
                return
            count("async_events")


def cancel(handles: list[netnotify.NotificationHandle], cycle: int, keep: bool) -> None:
    for i, handle in enumerate(handles):
        if keep and i % 3 == 0:
            count("left_live")  # the atexit hook cancels these
            continue
        if (i + cycle) % 3 == 0:
            with handle:
                pass
        elif (i + cycle) % 3 == 1:
            handle.cancel()
        elif handle.active:
            netnotify.cancel_mib_change_notify2(handle)
        count("cancelled")


def live_objects() -> Counter[str]:
    """Handles and watchers still alive after a collection (both are garbage-collected objects, which
    Valgrind sees as reachable through the collector's lists even when a reference leaked)."""
    gc.collect()
    kinds = (netnotify.NotificationHandle, netnotify.Watcher)
    return Counter(type(obj).__name__ for obj in gc.get_objects() if isinstance(obj, kinds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3, help="default 3")
    args = parser.parse_args()
    check_private_netns()
    sys.unraisablehook = lambda unraisable: count("unraisable")
    setup()
    stop = threading.Event()
    change_thread = threading.Thread(target=changer, args=(stop,), daemon=True)
    change_thread.start()
    started = time.monotonic()
    pending: list[netnotify.NotificationHandle] = []
    phases: dict[str, float] = dict.fromkeys(
        ["stable", "register", "failing", "tables", "watchers", "cancel"], 0.0
    )

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] += now - since
        return now

    for cycle in range(args.cycles):
        last = cycle == args.cycles - 1
        t = time.monotonic()
        stable = stable_table(cycle)  # first: a dispatcher busy with the others would make it wait long
        if stable is not None:
            pending.append(stable)
        t = phase("stable", t)
        handles = register_all(cycle)
        time.sleep(0.3)  # callbacks run meanwhile: changes keep coming
        t = phase("register", t)
        failing_calls()
        t = phase("failing", t)
        tables(cycle)
        t = phase("tables", t)
        watchers(cycle)
        t = phase("watchers", t)
        count("netlink_drops", netlink_drops())  # before the cancel closes the tiny-buffer socket
        cancel(handles, cycle, keep=last)
        phase("cancel", t)
        if not last:
            cancel(pending, cycle, keep=False)
            pending.clear()
            del handles, stable
            for name, alive in live_objects().items():
                count(f"leaked_{name}", alive)  # everything of this cycle was cancelled or closed
        count("cycles")
    stop.set()
    change_thread.join(60)
    counts["seconds"] = round(time.monotonic() - started)
    counts.update({f"ms_{name}": int(seconds * 1000) for name, seconds in phases.items()})
    print(json.dumps(dict(sorted(counts.items()))), flush=True)


if __name__ == "__main__":
    main()
