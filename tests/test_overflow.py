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
from nettest import KNOWS_SYSCALLS, KNOWS_SYSCALLS_REASON, Lan, NetNS, hook_watch_rows, syscall_of, wait_until

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


View: typing.TypeAlias = dict[tuple[object, ...], netnotify.MibIpForwardRow2]


def _assert_view_is_table(view: View, lock: threading.Lock) -> None:
    table = {_key(row): row for row in netnotify.get_ip_forward_table2(socket.AF_INET)}
    with lock:
        assert set(view) == set(table), (len(view), len(table))
        assert all(view[key] == table[key] for key in table)


def _burst(ns: NetNS, lan: Lan, adds: int, deletes: int, sent: threading.Event | None = None) -> None:
    """adds route adds, then deletes of the first of them, each batch in one `ip -batch`; sent is set once
    the adds are sent."""
    lines = [
        f"route add 10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}/32 via {lan.gateway4}"
        for i in range(adds)
    ]
    try:
        ns.batch(lines)
    finally:
        if sent is not None:
            sent.set()
    ns.batch([line.replace("route add", "route del").split(" via ")[0] for line in lines[:deletes]])


def _lead(ns: NetNS, lan: Lan, stalled_on: list[int], consumer: _Consumer) -> None:
    """One change before the burst, which the consumer reads, and stalls on (its on_row records the thread)
    until the burst is sent: the burst overflows the socket while the consumer holds it. Sent as part of the
    burst, the first change could come after the overflow, which a read reports before any data (ENOBUFS):
    the dispatcher's repair then delivered the whole burst (a flake of the precondition)."""
    ns.ip(f"route add 10.98.0.1/32 via {lan.gateway4}")
    wait_until(lambda: stalled_on, 5, "the lead change read")
    assert stalled_on == [consumer.ident], "the lead change was not read by the consumer"


def test_overflow_is_repaired_and_the_final_state_equals_the_table(
    ns: NetNS, lan: Lan, reports: list[object]
) -> None:
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


class _Consumer:
    """A route watcher's consumer on a thread of its own, blocking (`for event in watcher`) or asyncio
    (`async for` in asyncio.run), applying the events to a view of the table."""

    def __init__(self, watcher: netnotify.Watcher, style: str) -> None:
        self.watcher = watcher
        self.style = style
        self.view: View = {}
        self.lock = threading.Lock()
        self.events = 0
        self.ident = 0
        target = self._blocking if style == "blocking" else lambda: asyncio.run(self._async())
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def _apply(self, event: netnotify.Event) -> None:
        if isinstance(event, netnotify.RouteEvent):
            with self.lock:
                self.events += 1
                if event.change is netnotify.Change.DELETE:
                    self.view.pop(_key(event.row), None)
                else:
                    self.view[_key(event.row)] = event.row

    def _blocking(self) -> None:
        self.ident = threading.get_ident()
        for event in self.watcher:
            self._apply(event)

    async def _async(self) -> None:
        self.ident = threading.get_ident()
        async for event in self.watcher:
            self._apply(event)

    def reads_itself(self) -> bool:
        """It holds the socket now: asleep in its read (blocking), or the socket lent to its loop."""
        if self.style == "blocking":
            return syscall_of(self.thread.native_id) == "recvmmsg"
        return self.watcher._lent

    def take_the_socket(self, ns: NetNS, lan: Lan) -> None:
        """Changes, until the consumer reads the socket itself: its first wait only asks for it."""
        for i in range(50):
            ns.ip(f"route add 10.99.0.{i}/32 via {lan.gateway4}")
            # Held three looks in a row, 0.1 s apart: a thread woken for the change can still show the
            # read's system call until it runs (a loaded machine made the burst's first change go elsewhere).
            held = 0
            for _ in range(10):
                time.sleep(0.1)
                held = held + 1 if self.reads_itself() else 0
                if held == 3:
                    return
        raise AssertionError("the consumer never read the socket itself")

    def close(self) -> None:
        self.watcher.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A 4 KiB receive buffer for the registrations the test makes; what sys.unraisablehook receives."""
    monkeypatch.setenv("NETNOTIFY_RCVBUF", "4096")
    got: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: got.append(unraisable.exc_value))
    return got


def _reading_consumer(
    ns: NetNS, lan: Lan, style: str, monkeypatch: pytest.MonkeyPatch, on_row: typing.Callable[..., None]
) -> _Consumer:
    """A route watcher (each change goes through on_row, see hook_watch_rows) and its consumer, once that
    reads the socket."""
    hook_watch_rows(on_row, monkeypatch.setattr)
    consumer = _Consumer(netnotify.watch("route", family=socket.AF_INET, snapshot=True), style)
    try:
        consumer.take_the_socket(ns, lan)
    except BaseException:
        consumer.close()
        raise
    return consumer


STYLES = pytest.mark.parametrize(
    "style",
    [
        pytest.param("blocking", marks=pytest.mark.skipif(not KNOWS_SYSCALLS, reason=KNOWS_SYSCALLS_REASON)),
        "asyncio",
    ],
)


def _stall_the_consumer_through_a_burst(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch, style: str, adds: int, deletes: int
) -> None:
    """A consumer that reads its socket itself stalls on a lead change until the burst's adds have been sent
    (they overflow its 4 KiB buffer meanwhile), then the deletes come; at the end, the view the consumer
    applied must equal the kernel's table."""
    stall = threading.Event()
    adds_sent = threading.Event()
    stalled_on: list[int] = []

    def on_row(callback: typing.Callable[..., object], *args: typing.Any) -> None:
        if stall.is_set() and not stalled_on:
            stalled_on.append(threading.get_ident())
            adds_sent.wait(60)  # the reader holds the socket until the adds have been sent
        callback(*args)

    consumer = _reading_consumer(ns, lan, style, monkeypatch, on_row)
    try:
        stall.set()
        drops_before = _netlink_drops()
        try:
            _lead(ns, lan, stalled_on, consumer)
            _burst(ns, lan, adds, deletes, sent=adds_sent)
        finally:
            adds_sent.set()
        _wait_quiet(lambda: consumer.events)
        assert _netlink_drops() > drops_before  # the burst did overflow, or the test proves nothing
        _assert_view_is_table(consumer.view, consumer.lock)
    finally:
        consumer.close()


@STYLES
def test_a_watcher_consumer_that_reads_its_own_socket_is_repaired_too(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch, style: str, reports: list[object]
) -> None:
    """A burst that overflows while the consumer reads its socket itself (docs/watch.md: a blocking consumer
    on its own thread, an asyncio one in its event loop) is repaired too.

    Whichever read sees the overflow first (the consumer's, or the dispatcher's while the consumer is busy
    with an event, as the deletes come), the dispatcher repairs it: what the consumer applied ends equal to
    the kernel's table.
    """
    _stall_the_consumer_through_a_burst(ns, lan, monkeypatch, style, 4000, 1500)
    assert reports == [], reports


@STYLES
def test_an_overflow_only_the_consumers_read_sees_is_repaired_by_the_dispatcher(
    ns: NetNS, lan: Lan, monkeypatch: pytest.MonkeyPatch, style: str, reports: list[object]
) -> None:
    """The consumer's read sees the overflow: it stalls on a change just before the burst while the whole
    burst is sent, and nothing changes after. The repair is the dispatcher's to do (the consumer hands it
    over): without it the view would miss the adds the kernel dropped (both styles fail without the
    hand-over)."""
    _stall_the_consumer_through_a_burst(ns, lan, monkeypatch, style, 2000, 0)
    assert reports == [], reports
