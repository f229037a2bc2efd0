"""An overflowed netlink socket is repaired: the callbacks still describe every net change.

NETNOTIFY_RCVBUF forces a receive buffer of a few KiB, so that a burst of thousands of route changes overflows
it many times (the kernel drops notifications, and after the first ENOBUFS it drops them silently); the first
callback stalls the dispatcher, so that it surely does. The backend must notice every drop, dump the routes
again and report the difference: the state the callbacks describe must end equal to the kernel's table, row
for row. The adds queued before the drops are stale by then (the burst's deletes of the same routes were
dropped): read after the repair's dump, they would bring those routes back.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import typing

import pytest
from nettest import KNOWS_SYSCALLS, KNOWS_SYSCALLS_REASON, Lan, NetNS, syscall_of

import netnotify

pytestmark = pytest.mark.linux

BURST_ADDS = 8000
BURST_DELETES = 3000


def _netlink_drops() -> int:
    """Messages the kernel dropped on the netlink sockets of this network namespace (per-namespace file)."""
    with open("/proc/net/netlink") as file:
        header, *rows = (line.split() for line in file)
    column = header.index("Drops")
    return sum(int(row[column]) for row in rows)


def _key(row: netnotify.MibIpForwardRow2) -> tuple[object, ...]:
    return (row.destination_prefix, row.next_hop, row.interface_index)


def _wait_quiet(total: typing.Callable[[], int]) -> None:
    """Until total() stays the same for a second (repairs re-dump the table until a dump sees no drop)."""
    deadline = time.monotonic() + 60
    last = -1
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = total()
        if now == last:
            return
        last = now


def _assert_view_is_table(
    view: dict[tuple[object, ...], netnotify.MibIpForwardRow2], lock: threading.Lock
) -> None:
    table = {_key(row): row for row in netnotify.get_ip_forward_table2(socket.AF_INET)}
    with lock:
        assert set(view) == set(table), (len(view), len(table))
        assert all(view[key] == table[key] for key in table)


def _burst(ns: NetNS, lan: Lan, adds: int, deletes: int) -> None:
    lines = [
        f"route add 10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}/32 via {lan.gateway4}"
        for i in range(adds)
    ]
    ns.batch(lines)
    ns.batch([line.replace("route add", "route del").split(" via ")[0] for line in lines[:deletes]])


def test_overflow_is_repaired_and_the_final_state_equals_the_table(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETNOTIFY_RCVBUF", "4096")
    reports: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: reports.append(unraisable.exc_value))
    lock = threading.Lock()
    view = {_key(row): row for row in netnotify.get_ip_forward_table2(socket.AF_INET)}
    counts = {"add": 0, "delete": 0, "change": 0}
    stalled = threading.Event()

    def callback(
        _context: object, row: netnotify.MibIpForwardRow2 | None, kind: netnotify.MibNotificationType
    ) -> None:
        assert row is not None
        if not stalled.is_set():  # the dispatcher stalls at the burst's start: its buffer surely overflows
            stalled.set()
            time.sleep(0.5)
        with lock:
            if kind == netnotify.MibNotificationType.DELETE_INSTANCE:
                counts["delete"] += 1
                view.pop(_key(row), None)
            else:
                counts["add" if kind == netnotify.MibNotificationType.ADD_INSTANCE else "change"] += 1
                view[_key(row)] = row

    with netnotify.notify_route_change2(socket.AF_INET, callback):
        drops_before = _netlink_drops()
        _burst(ns, lan, BURST_ADDS, BURST_DELETES)
        _wait_quiet(lambda: sum(counts.values()))
        # The burst did overflow the tiny buffer, or the test proves nothing.
        assert _netlink_drops() > drops_before
        _assert_view_is_table(view, lock)
    assert reports == [], reports


@pytest.mark.skipif(not KNOWS_SYSCALLS, reason=KNOWS_SYSCALLS_REASON)
def test_a_watcher_consumer_that_reads_its_own_socket_is_repaired_too(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst that overflows while the consumer reads its socket itself (docs/watch.md) is repaired too.

    Whichever read sees the overflow first (the consumer's, or the dispatcher's while the consumer is busy
    with an event), the dispatcher repairs it: what the consumer applied ends equal to the kernel's table.
    """
    monkeypatch.setenv("NETNOTIFY_RCVBUF", "4096")
    reports: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: reports.append(unraisable.exc_value))
    stall = threading.Event()
    readers: set[int] = set()  # the threads that delivered the burst's changes
    original = netnotify.Watcher._on_row

    def on_row(self: netnotify.Watcher, *args: typing.Any) -> None:
        if stall.is_set():
            readers.add(threading.get_ident())
            if not stalled.is_set():
                stalled.set()  # the burst's first change stalls its reader: the tiny buffer overflows
                time.sleep(0.5)
        original(self, *args)

    stalled = threading.Event()

    monkeypatch.setattr(netnotify.Watcher, "_on_row", on_row)
    view: dict[tuple[object, ...], netnotify.MibIpForwardRow2] = {}
    lock = threading.Lock()
    events = [0]
    watcher = netnotify.watch("route", family=socket.AF_INET, snapshot=True)

    def consume() -> None:
        for event in watcher:
            if isinstance(event, netnotify.RouteEvent):
                with lock:
                    events[0] += 1
                    if event.change is netnotify.Change.DELETE:
                        view.pop(_key(event.row), None)
                    else:
                        view[_key(event.row)] = event.row

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:
        # Changes first, until the consumer sleeps in the read of its socket: its first wait only asks for
        # the socket, and a wait that found the dispatcher reading waits for it once.
        for i in range(50):
            ns.ip(f"route add 10.99.0.{i}/32 via {lan.gateway4}")
            time.sleep(0.1)
            if syscall_of(consumer.native_id) == "recvmmsg":
                break
        assert syscall_of(consumer.native_id) == "recvmmsg", "the consumer never read itself"
        stall.set()
        drops_before = _netlink_drops()
        _burst(ns, lan, 4000, 1500)
        _wait_quiet(lambda: events[0])
        # The consumer read changes of the burst itself (the dispatcher reads those that come while it is
        # busy with one, and may have read the first).
        assert consumer.ident in readers, "no change of the burst was read on the consumer's thread"
        assert _netlink_drops() > drops_before  # the burst did overflow, or the test proves nothing
        _assert_view_is_table(view, lock)
    finally:
        watcher.close()
        consumer.join(5)
    assert reports == [], reports


def test_an_asyncio_watcher_whose_loop_reads_its_socket_is_repaired_too(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same while the event loop reads the socket (a coroutine awaits aget(), docs/watch.md): the burst's
    first change blocks the loop, the tiny buffer overflows, and what the coroutine applied ends equal to the
    kernel's table."""
    monkeypatch.setenv("NETNOTIFY_RCVBUF", "4096")
    reports: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: reports.append(unraisable.exc_value))
    stall = threading.Event()
    stalled = threading.Event()
    readers: set[int] = set()
    original = netnotify.Watcher._on_row

    def on_row(self: netnotify.Watcher, *args: typing.Any) -> None:
        if stall.is_set():
            readers.add(threading.get_ident())
            if not stalled.is_set():
                stalled.set()
                time.sleep(0.5)
        original(self, *args)

    monkeypatch.setattr(netnotify.Watcher, "_on_row", on_row)
    view: dict[tuple[object, ...], netnotify.MibIpForwardRow2] = {}
    lock = threading.Lock()
    events = [0]
    watcher = netnotify.watch("route", family=socket.AF_INET, snapshot=True)
    loop_thread: list[int] = []

    async def consume() -> None:
        loop_thread.append(threading.get_ident())
        async for event in watcher:
            if isinstance(event, netnotify.RouteEvent):
                with lock:
                    events[0] += 1
                    if event.change is netnotify.Change.DELETE:
                        view.pop(_key(event.row), None)
                    else:
                        view[_key(event.row)] = event.row

    consumer = threading.Thread(target=asyncio.run, args=(consume(),), daemon=True)
    consumer.start()
    try:
        for i in range(50):  # until the loop has the socket: the first wait only asks for it
            ns.ip(f"route add 10.99.0.{i}/32 via {lan.gateway4}")
            time.sleep(0.1)
            if watcher._lent:
                break
        assert watcher._lent, "the socket was never lent to the event loop"
        stall.set()
        drops_before = _netlink_drops()
        _burst(ns, lan, 4000, 1500)
        _wait_quiet(lambda: events[0])
        assert loop_thread[0] in readers, "no change of the burst was read by the event loop"
        assert _netlink_drops() > drops_before  # the burst did overflow, or the test proves nothing
        _assert_view_is_table(view, lock)
    finally:
        watcher.close()
        consumer.join(5)
    assert not consumer.is_alive()
    assert reports == [], reports
