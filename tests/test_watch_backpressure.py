"""netnotify.watch() under load (docs/watch.md): coalescing with settle=, and backpressure "unbounded",
"bounded" (Overflow, then a resynchronisation) and "latest" (one pending event per object)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import Counter

import pytest
from nettest import SETTLE, Lan, NetNS, wait_until
from test_watch import (
    V4_ADDRESS,
    Consumer,
    apply_events,
    describe,
    extra_threads,
    is_event,
    key_of,
    route_table,
)

import netnotify
from netnotify import Change

pytestmark = pytest.mark.linux

BURST = 200


def route_prefix(i: int, third: int = 61) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{third}.{i // 256}.{i % 256}/32")


def add_commands(count: int, third: int = 61) -> list[str]:
    return [f"route add {route_prefix(i, third)} via 10.9.0.2 dev v0" for i in range(count)]


def drain(watcher: netnotify.Watcher, quiet: float = SETTLE, timeout: float = 20.0) -> list[netnotify.Event]:
    """get() until nothing came for `quiet` seconds (each get has its own timeout, the whole a deadline)."""
    events: list[netnotify.Event] = []
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"events still came after {timeout} s:\n{describe(events)}"
        try:
            events.append(watcher.get(timeout=quiet))
        except TimeoutError:
            return events


def wait_queue_still(watcher: netnotify.Watcher, still: float = SETTLE, timeout: float = 10.0) -> int:
    """Waits until len(watcher) stayed the same for `still` seconds (the watcher took in the burst)."""
    deadline = time.monotonic() + timeout
    size, since = len(watcher), time.monotonic()
    while time.monotonic() - since < still:
        assert time.monotonic() < deadline, f"len(watcher) still changed after {timeout} s"
        time.sleep(0.02)
        if len(watcher) != size:
            size, since = len(watcher), time.monotonic()
    return size


def through_snapshot(watcher: netnotify.Watcher) -> list[netnotify.Event]:
    """The events up to and including the first SnapshotComplete (5 s at most)."""
    events: list[netnotify.Event] = []
    deadline = time.monotonic() + 5
    while not events or not isinstance(events[-1], netnotify.SnapshotComplete):
        assert time.monotonic() < deadline, f"no SnapshotComplete within 5 s:\n{describe(events)}"
        events.append(watcher.get(timeout=5))
    return events


# ---------------------------------------------------------------- coalescing (settle=)

WINDOW = 0.3


def test_settle_add_then_delete_is_nothing(ns: NetNS, lan: Lan) -> None:
    with (
        netnotify.watch("address", settle=WINDOW) as settled,
        netnotify.watch("address") as plain,
        Consumer(settled) as consumer,
        Consumer(plain) as control,
    ):
        ns.batch([f"addr add {V4_ADDRESS} dev v0", f"addr del {V4_ADDRESS} dev v0"])
        control.wait_for(is_event(netnotify.AddressEvent, Change.DELETE, address=V4_ADDRESS.ip))
        time.sleep(2 * WINDOW)
        marker = ipaddress.IPv4Interface("10.9.7.2/24")
        ns.ip(f"addr add {marker} dev v0")
        consumer.wait_for(is_event(netnotify.AddressEvent, Change.ADD, address=marker.ip), timeout=5)
        events = consumer.wait_quiet(quiet=2 * WINDOW)
    assert [e.change for e in control.row_events() if e.row.address == V4_ADDRESS.ip] == [  # type: ignore[union-attr]
        Change.ADD,
        Change.DELETE,
    ], describe(control.events)
    assert [e for e in consumer.row_events() if e.row.address == V4_ADDRESS.ip] == [], describe(events)  # type: ignore[union-attr]


def test_settle_add_then_change_is_one_add_of_the_final_row(ns: NetNS) -> None:
    index = ns.veth()
    spec = f"{V4_ADDRESS} dev v0"
    with (
        netnotify.watch("address", settle=WINDOW) as settled,
        netnotify.watch("address") as plain,
        Consumer(settled) as consumer,
        Consumer(plain) as control,
    ):
        ns.batch(
            [
                f"addr add {spec} valid_lft 300 preferred_lft 200",
                f"addr change {spec} valid_lft 300 preferred_lft 0",  # deprecated
            ]
        )
        control.wait_for(is_event(netnotify.AddressEvent, Change.CHANGE, address=V4_ADDRESS.ip))
        event = consumer.wait_for(is_event(netnotify.AddressEvent, address=V4_ADDRESS.ip), timeout=5)
        events = consumer.wait_quiet(quiet=2 * WINDOW)
        final = netnotify.get_unicast_ip_address_entry(
            netnotify.MibUnicastIpAddressRow(address=V4_ADDRESS.ip, interface_index=index)
        )
    assert isinstance(event, netnotify.AddressEvent)
    assert event.change == Change.ADD
    assert event.row.dad_state == netnotify.NlDadState.DEPRECATED
    assert event.row.preferred_lifetime == 0
    assert event.row._replace(valid_lifetime=0) == final._replace(valid_lifetime=0)  # lifetimes count down
    mine = [e for e in events if isinstance(e, netnotify.AddressEvent) and e.row.address == V4_ADDRESS.ip]
    assert mine == [event], describe(events)
    changes = [e.change for e in control.row_events() if e.row.address == V4_ADDRESS.ip]  # type: ignore[union-attr]
    assert changes == [Change.ADD, Change.CHANGE], describe(control.events)


def test_settle_delivers_a_burst_together_after_the_window(ns: NetNS, lan: Lan) -> None:
    count = 50
    before_watch = set(threading.enumerate())
    with netnotify.watch("route", family=socket.AF_INET, settle=WINDOW) as watcher:
        consumer = Consumer(watcher)
        baseline = {*before_watch, consumer.thread}
        try:
            time.sleep(2 * WINDOW)
            assert extra_threads(baseline) == [], "a thread runs while nothing changes"
            ns.batch(add_commands(count, third=62))
            events = consumer.wait_count(count, timeout=5)
            arrivals = consumer.arrivals
            consumer.wait_quiet(quiet=2 * WINDOW)
            assert len(consumer.events) == count, describe(consumer.events)
            wait_until(lambda: extra_threads(baseline) == [], 2, "the settle timer to end once idle")
        finally:
            consumer.stop()
    assert all(is_event(netnotify.RouteEvent, Change.ADD)(event) for event in events), describe(events)
    prefixes = [e.row.destination_prefix for e in events if isinstance(e, netnotify.RouteEvent)]
    assert prefixes == [route_prefix(i, third=62) for i in range(count)], "not in the order of the changes"
    times = [e.time for e in events if isinstance(e, netnotify.RouteEvent)]
    first_change = min(times)
    assert max(times) - first_change < WINDOW, "precondition: the burst took longer than the window"
    assert min(arrivals) - first_change < WINDOW + 0.7, "the burst came long after the window"
    assert min(arrivals) - first_change >= WINDOW - 0.02, (
        f"the first event came {min(arrivals) - first_change:.3f} s after the first change, within the window"
    )
    assert max(arrivals) - min(arrivals) < 0.1, f"delivered over {max(arrivals) - min(arrivals):.3f} s"


def test_settle_change_then_change_back_is_nothing(ns: NetNS, lan: Lan) -> None:
    """delete + add of the same row within the window: nothing (the row came back equal)."""
    spec = f"10.63.0.0/24 via {lan.gateway4} dev v0 metric 5"
    ns.ip(f"route add {spec}")
    with (
        netnotify.watch("route", family=socket.AF_INET, settle=WINDOW) as settled,
        Consumer(settled) as consumer,
    ):
        ns.batch([f"route del {spec}", f"route add {spec}"])
        time.sleep(2 * WINDOW)
        ns.ip(f"route add 10.63.1.0/24 via {lan.gateway4} dev v0")  # a marker
        consumer.wait_for(
            is_event(
                netnotify.RouteEvent, Change.ADD, destination_prefix=ipaddress.IPv4Network("10.63.1.0/24")
            )
        )
        events = consumer.wait_quiet(quiet=2 * WINDOW)
    target = ipaddress.IPv4Network("10.63.0.0/24")
    assert [e for e in consumer.row_events() if getattr(e.row, "destination_prefix", None) == target] == [], (
        describe(events)
    )


def test_settle_lets_each_change_out_while_the_consumer_sleeps_in_its_socket_read(
    ns: NetNS, lan: Lan
) -> None:
    """Changes far apart: each comes one window after it, not with the change after it.

    While it waits, the consumer sleeps in the read of its registration's socket; the settle timer lets a
    change out on its own thread, and must end that read (before, each change came only with the next one,
    and the last never).
    """
    prefixes = [ipaddress.IPv4Network(f"10.64.{i}.0/24") for i in range(3)]
    with (
        netnotify.watch("route", family=socket.AF_INET, settle=WINDOW) as settled,
        Consumer(settled) as consumer,
    ):
        for prefix in prefixes:
            sent = time.time()
            ns.ip(f"route add {prefix} via {lan.gateway4} dev v0")
            event = consumer.wait_for(
                is_event(netnotify.RouteEvent, Change.ADD, destination_prefix=prefix), timeout=WINDOW + 2
            )
            arrived = consumer.arrivals[consumer.events.index(event)]
            assert WINDOW * 0.9 <= arrived - sent < WINDOW + 1.5, (prefix, arrived - sent)
            time.sleep(2 * WINDOW)  # the consumer sleeps in its socket's read again


# ---------------------------------------------------------------- backpressure


def test_unbounded_keeps_every_event(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch("route", family=socket.AF_INET) as watcher:
        ns.batch(add_commands(BURST))
        wait_until(lambda: len(watcher) >= BURST, 10, f"{BURST} queued events")
        time.sleep(SETTLE)  # the consumer is slow
        events = drain(watcher)
    adds = [e for e in events if isinstance(e, netnotify.RouteEvent) and e.change == Change.ADD]
    assert [e.row.destination_prefix for e in adds] == [route_prefix(i) for i in range(BURST)], describe(
        events
    )
    assert len(events) == BURST, describe(events)


def check_overflowed_stream(events: list[netnotify.Event], maxsize: int) -> None:
    """Overflow came after at most maxsize events, each one followed by a SnapshotComplete."""
    overflows = [i for i, e in enumerate(events) if isinstance(e, netnotify.Overflow)]
    assert overflows, f"no Overflow:\n{describe(events)}"
    assert overflows[0] <= maxsize, f"{overflows[0]} events were queued before Overflow:\n{describe(events)}"
    for i in overflows:
        overflow = events[i]
        assert isinstance(overflow, netnotify.Overflow)
        assert overflow.dropped >= 1
        after = [j for j, e in enumerate(events) if j > i and isinstance(e, netnotify.SnapshotComplete)]
        assert after, f"no SnapshotComplete after the Overflow at {i}:\n{describe(events)}"
        between = [e for e in events[i + 1 : after[0]] if isinstance(e, netnotify.Overflow)]
        assert between == [], describe(events)


def test_bounded_overflow_then_resynchronisation(ns: NetNS, lan: Lan) -> None:
    maxsize = 10
    with netnotify.watch(
        "route", family=socket.AF_INET, snapshot=True, backpressure="bounded", maxsize=maxsize
    ) as watcher:
        initial = len(watcher)
        assert initial < maxsize, f"precondition: the snapshot fills the queue ({initial} events)"
        ns.batch(add_commands(BURST))
        size = wait_queue_still(watcher)  # the consumer sleeps through the burst
        assert size <= maxsize + 1, f"{size} events queued with maxsize={maxsize} (+1 for Overflow)"
        events = drain(watcher)
        table = route_table(socket.AF_INET)
    check_overflowed_stream(events, maxsize)
    view, problems = apply_events(events)
    assert problems == [], "\n".join(problems[:20]) + f"\n{describe(events)}"
    assert view == table, f"missing: {sorted(map(str, table.keys() - view.keys()))[:10]}\n{describe(events)}"
    added = [route_prefix(i) for i in range(BURST)]
    assert all((netnotify.Kind.ROUTE, prefix, lan.gateway4, lan.index) in view for prefix in added)


def test_bounded_overflow_with_deletes_and_changes(ns: NetNS, lan: Lan) -> None:
    """Dropped deletes and changes are resynchronised too."""
    maxsize = 10
    existing = add_commands(60, third=64)
    ns.batch(existing)
    with netnotify.watch("route", family=socket.AF_INET, backpressure="bounded", maxsize=maxsize) as watcher:
        before = route_table(socket.AF_INET)
        commands = [command.replace("route add", "route del") for command in existing[:30]]
        commands += [
            f"{command.replace('route add', 'route replace')} proto dhcp" for command in existing[30:]
        ]
        commands += add_commands(BURST)
        ns.batch(commands)
        wait_queue_still(watcher)
        events = drain(watcher)
        table = route_table(socket.AF_INET)
    check_overflowed_stream(events, maxsize)
    view, problems = apply_events(events, state=before)
    assert problems == [], "\n".join(problems[:20]) + f"\n{describe(events)}"
    assert view == table, (
        f"missing: {sorted(map(str, table.keys() - view.keys()))[:10]}, "
        f"extra: {sorted(map(str, view.keys() - table.keys()))[:10]}\n{describe(events)}"
    )


def test_bounded_snapshot_larger_than_the_queue(ns: NetNS, lan: Lan) -> None:
    """A snapshot that overflows the queue is resynchronised like any other burst: no row is lost."""
    ns.batch(add_commands(30, third=65))
    maxsize = 3
    with netnotify.watch("route", snapshot=True, backpressure="bounded", maxsize=maxsize) as watcher:
        events = drain(watcher)
        table = route_table()
    check_overflowed_stream(events, maxsize)
    view, problems = apply_events(events)
    assert problems == [], "\n".join(problems[:20]) + f"\n{describe(events)}"
    assert view.keys() == table.keys(), (
        f"missing: {sorted(map(str, table.keys() - view.keys()))[:10]}, "
        f"extra: {sorted(map(str, view.keys() - table.keys()))[:10]}\n{describe(events)}"
    )
    assert view == table


def test_latest_keeps_one_pending_event_per_object(ns: NetNS, lan: Lan) -> None:
    flipping = f"10.66.0.0/24 via {lan.gateway4} dev v0 metric 5"
    doomed = f"10.66.1.0/24 via {lan.gateway4} dev v0"
    ns.ip(f"route add {flipping} proto static")
    ns.ip(f"route add {doomed}")
    transient = [f"10.66.{2 + i}.0/24 via {lan.gateway4} dev v0" for i in range(10)]
    lasting = [f"10.66.{20 + i}.0/24 via {lan.gateway4} dev v0" for i in range(10)]
    commands = []
    for i in range(21):  # static, dhcp, static, ... ending with dhcp
        commands.append(f"route replace {flipping} proto {'dhcp' if i % 2 == 0 else 'static'}")
    for spec in transient:
        commands += [f"route add {spec}", f"route del {spec}", f"route add {spec}", f"route del {spec}"]
    commands += [f"route add {spec}" for spec in lasting]
    commands.append(f"route del {doomed}")
    with netnotify.watch("route", family=socket.AF_INET, snapshot=True, backpressure="latest") as watcher:
        start = through_snapshot(watcher)
        view, problems = apply_events(start)
        assert problems == []
        ns.batch(commands)  # the consumer sleeps through it
        wait_queue_still(watcher)
        pending = len(watcher)
        events = drain(watcher)
        table = route_table(socket.AF_INET)
    assert pending == len(events)
    keys = Counter(key_of(e) for e in events if isinstance(e, netnotify.RouteEvent))
    assert [key for key, n in keys.items() if n > 1] == [], (
        f"more than one event of an object:\n{describe(events)}"
    )
    by_prefix = {str(e.row.destination_prefix): e for e in events if isinstance(e, netnotify.RouteEvent)}
    flipped = by_prefix.get("10.66.0.0/24")
    assert flipped is not None, describe(events)
    assert flipped.change == Change.CHANGE
    assert flipped.row.protocol == netnotify.NlRouteProtocol.DHCP, "a stale row"
    for spec in transient:
        assert spec.split()[0] not in by_prefix, (
            f"{spec}: added and deleted, yet reported:\n{describe(events)}"
        )
    for spec in lasting:
        assert by_prefix[spec.split()[0]].change == Change.ADD
    assert by_prefix["10.66.1.0/24"].change == Change.DELETE
    view, problems = apply_events(events, state=view)
    assert problems == [], "\n".join(problems[:20]) + f"\n{describe(events)}"
    assert view == table


def test_latest_under_a_big_burst_reaches_the_table(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch("route", family=socket.AF_INET, snapshot=True, backpressure="latest") as watcher:
        view, problems = apply_events(through_snapshot(watcher))
        assert problems == []
        commands = add_commands(BURST, third=67)
        commands += [command.replace("route add", "route del") for command in commands[::2]]
        ns.batch(commands)
        wait_queue_still(watcher)
        assert len(watcher) == BURST // 2, "more than one pending event per object"
        events = drain(watcher)
        table = route_table(socket.AF_INET)
    view, problems = apply_events(events, state=view)
    assert problems == [], "\n".join(problems[:20]) + f"\n{describe(events)}"
    assert view == table
