"""netnotify.watch() semantics (docs/watch.md): snapshot then live with no gap, complete rows, enriched
deletes, the family and kind filters, and ignore_lifetime_changes."""

from __future__ import annotations

import functools
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Sequence

import pytest
from nettest import SETTLE, BackgroundCall, Lan, NetNS, row_family
from test_watch import (
    ROW_EVENT_CLASSES,
    V4_ADDRESS,
    V6_ADDRESS,
    Consumer,
    Key,
    apply_events,
    describe,
    is_event,
    key_of,
    route_table,
)

import netnotify
from netnotify import Change, Kind

pytestmark = pytest.mark.linux

# ---------------------------------------------------------------- snapshot then live


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def burst_commands(attempt: int, count: int = 300) -> tuple[list[str], set[Network]]:
    """`ip` commands for one attempt: `count` route adds (IPv4 and IPv6), replaces of a sixth (a change of
    protocol), deletes of a third. Returns the commands and the prefixes they touch."""
    adds: list[str] = []
    replaces: list[str] = []
    deletes: list[str] = []
    prefixes: set[Network] = set()
    for i in range(count):
        if i % 2:
            prefix: Network = ipaddress.IPv4Network(f"10.{100 + attempt}.{i // 256}.{i % 256}/32")
            spec = f"{prefix} via 10.9.0.2 dev v0"
        else:
            prefix = ipaddress.IPv6Network(f"2001:db8:{0x100 + attempt:x}::{i:x}/128")
            spec = f"{prefix} via 2001:db8:1::2 dev v0"
        adds.append(f"route add {spec}")
        if i % 6 == 1:
            replaces.append(f"route replace {spec} proto dhcp")
        if i % 3 == 0:
            deletes.append(f"route del {spec}")
        prefixes.add(prefix)
    return adds + replaces + deletes, prefixes


def run_in_chunks(ns: NetNS, commands: Sequence[str], begun: threading.Event, chunk: int = 10) -> None:
    """Many short `ip -batch` runs, so that the changes go on while the watcher starts; `begun` is set
    once the first chunk is done."""
    for start in range(0, len(commands), chunk):
        ns.batch(commands[start : start + chunk])
        begun.set()


ATTEMPTS = 6
BIG = 2000


def test_snapshot_then_live_without_gap_or_duplicate(ns: NetNS, lan: Lan) -> None:
    """Routes change while watch(snapshot=True) starts; the events applied to a dict give the table.

    Repeated, with the watcher started at different points of the changes; most attempts must have started
    in the middle of them (changed routes both in the snapshot and in the live events).
    """
    # A big table makes reading it take a while: changes arrive while the tables are read.
    ns.batch([f"route add 10.99.{i // 256}.{i % 256}/32 via {lan.gateway4} dev v0" for i in range(BIG)])
    ns.batch([f"route add 2001:db8:99::{i:x}/128 via {lan.gateway6} dev v0" for i in range(BIG)])
    overlapped = 0
    rng = random.Random(1234)
    for attempt in range(ATTEMPTS):
        commands, touched = burst_commands(attempt)
        begun = threading.Event()
        changer = BackgroundCall(functools.partial(run_in_chunks, ns, commands, begun))
        assert begun.wait(10), "the first route changes took more than 10 s"
        time.sleep(rng.uniform(0.0, 0.03))
        with netnotify.watch("route", snapshot=True) as watcher, Consumer(watcher) as consumer:
            changer.thread.join(30)
            assert not changer.thread.is_alive(), "the route changes took more than 30 s"
            assert changer.error is None, changer.error
            events = consumer.wait_quiet(quiet=0.5)
            table = route_table()
        context = f"attempt {attempt}:\n{describe(events)}"
        completes = [i for i, event in enumerate(events) if isinstance(event, netnotify.SnapshotComplete)]
        assert len(completes) == 1, f"SnapshotComplete came {len(completes)} times; {context}"
        complete = completes[0]
        for i, event in enumerate(events):
            assert isinstance(event, (*ROW_EVENT_CLASSES, netnotify.SnapshotComplete)), context
            if isinstance(event, netnotify.RouteEvent):
                assert event.complete
                if i < complete:
                    assert event.change == Change.SNAPSHOT, f"event {i} before SnapshotComplete; {context}"
                else:
                    assert event.change != Change.SNAPSHOT, f"event {i} after SnapshotComplete; {context}"
        view, problems = apply_events(events)
        assert problems == [], "\n".join(problems[:20]) + f"\n{context}"
        assert view.keys() == table.keys(), (
            f"missing: {sorted(map(str, table.keys() - view.keys()))[:10]}, "
            f"extra: {sorted(map(str, view.keys() - table.keys()))[:10]}; {context}"
        )
        different = [key for key in table if view[key] != table[key]]
        assert different == [], f"rows that differ from the table: {different[:5]}; {context}"
        snapshot_burst = [
            e
            for e in events[:complete]
            if isinstance(e, netnotify.RouteEvent) and e.row.destination_prefix in touched
        ]
        live_burst = [
            e
            for e in events[complete + 1 :]
            if isinstance(e, netnotify.RouteEvent) and e.row.destination_prefix in touched
        ]
        if snapshot_burst and live_burst:
            overlapped += 1
    assert overlapped >= ATTEMPTS // 2, (
        f"{overlapped} of {ATTEMPTS} attempts started while the routes changed"
    )


def test_snapshot_of_every_default_kind_equals_the_tables(ns: NetNS, lan: Lan) -> None:
    ns.ip(f"addr add {V4_ADDRESS} dev v0")
    ns.ip(f"route add 10.58.0.0/24 via {lan.gateway4} dev v0")
    with netnotify.watch(snapshot=True) as watcher, Consumer(watcher) as consumer:
        consumer.wait_for(lambda e: isinstance(e, netnotify.SnapshotComplete), what="SnapshotComplete")
        events = consumer.wait_quiet()
    assert isinstance(events[-1], netnotify.SnapshotComplete), describe(events)
    view, problems = apply_events(events)
    assert problems == [], problems
    expected: dict[Key, object] = {}
    for row in netnotify.get_ip_interface_table(socket.AF_UNSPEC):
        expected[(Kind.INTERFACE, int(row.family), row.interface_index)] = row
    for address in netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC):
        expected[(Kind.ADDRESS, address.address, address.interface_index)] = address
    expected.update(route_table())
    assert view == expected
    kinds = {type(event) for event in events[:-1]}
    assert kinds == set(ROW_EVENT_CLASSES)


# ---------------------------------------------------------------- complete rows, enriched deletes


def entry_of(event: netnotify.InterfaceEvent | netnotify.AddressEvent | netnotify.RouteEvent) -> object:
    """get_*_entry of the event's key (a key row holding only the identity members)."""
    row = event.row
    if isinstance(row, netnotify.MibIpInterfaceRow):
        return netnotify.get_ip_interface_entry(
            netnotify.MibIpInterfaceRow(family=row.family, interface_index=row.interface_index)
        )
    if isinstance(row, netnotify.MibUnicastIpAddressRow):
        return netnotify.get_unicast_ip_address_entry(
            netnotify.MibUnicastIpAddressRow(address=row.address, interface_index=row.interface_index)
        )
    return netnotify.get_ip_forward_entry2(
        netnotify.MibIpForwardRow2(
            destination_prefix=row.destination_prefix,
            next_hop=row.next_hop,
            interface_index=row.interface_index,
        )
    )


def test_rows_are_complete_and_equal_their_entries(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch() as watcher, Consumer(watcher) as consumer:
        ns.ip("link set v0 mtu 1400")
        ns.ip(f"addr add {V4_ADDRESS} dev v0")
        ns.ip(f"addr add {V6_ADDRESS} dev v0 nodad")
        ns.ip(f"route add 10.58.0.0/24 via {lan.gateway4} dev v0 metric 9 proto static")
        ns.ip(f"route add 2001:db8:58::/64 via {lan.gateway6} dev v0 metric 9")
        consumer.wait_for(
            is_event(
                netnotify.RouteEvent, Change.ADD, destination_prefix=ipaddress.IPv6Network("2001:db8:58::/64")
            )
        )
        events = consumer.wait_quiet()
        latest: dict[Key, netnotify.InterfaceEvent | netnotify.AddressEvent | netnotify.RouteEvent] = {}
        for event in consumer.row_events():
            assert event.complete, event
            if event.change != Change.DELETE:
                latest[key_of(event)] = event
        assert {key[0] for key in latest} == {Kind.INTERFACE, Kind.ADDRESS, Kind.ROUTE}, describe(events)
        for key, event in latest.items():  # nothing changes any more: each row is the current one
            assert entry_of(event) == event.row, key


def test_row_at_delivery_equals_its_entry(ns: NetNS, lan: Lan) -> None:
    """An event's row is the object as it is when the event comes (no later change): equal to its entry."""
    with netnotify.watch("address", "route") as watcher, Consumer(watcher) as consumer:
        ns.ip(f"addr add {V4_ADDRESS} dev v0")
        address = consumer.wait_for(is_event(netnotify.AddressEvent, Change.ADD, address=V4_ADDRESS.ip))
        assert isinstance(address, netnotify.AddressEvent)
        assert entry_of(address) == address.row
        ns.ip(f"route add 10.58.0.0/24 via {lan.gateway4} dev v0 metric 9")
        route = consumer.wait_for(
            is_event(
                netnotify.RouteEvent, Change.ADD, destination_prefix=ipaddress.IPv4Network("10.58.0.0/24")
            )
        )
        assert isinstance(route, netnotify.RouteEvent)
        assert entry_of(route) == route.row


@pytest.mark.parametrize("address", [V4_ADDRESS, V6_ADDRESS], ids=["ipv4", "ipv6"])
def test_address_delete_carries_the_last_complete_row(
    ns: NetNS, lan: Lan, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
) -> None:
    nodad = " nodad" if address.version == 6 else ""
    ns.ip(f"addr add {address} dev v0{nodad}")
    known = netnotify.get_unicast_ip_address_entry(
        netnotify.MibUnicastIpAddressRow(address=address.ip, interface_index=lan.index)
    )
    with netnotify.watch("address") as watcher, Consumer(watcher) as consumer:
        ns.ip(f"addr del {address} dev v0")
        event = consumer.wait_for(is_event(netnotify.AddressEvent, Change.DELETE, address=address.ip))
        assert isinstance(event, netnotify.AddressEvent)
        assert event.row.on_link_prefix_length == address.network.prefixlen
        assert event.row.dad_state == netnotify.NlDadState.PREFERRED
        assert event.row.interface_index == lan.index
        assert event.row == known
        assert event.complete


def test_address_delete_after_a_change_carries_the_changed_row(ns: NetNS, lan: Lan) -> None:
    spec = f"{V6_ADDRESS} dev v0 nodad"
    with netnotify.watch("address") as watcher, Consumer(watcher) as consumer:
        ns.ip(f"addr add {spec}")
        consumer.wait_for(is_event(netnotify.AddressEvent, Change.ADD, address=V6_ADDRESS.ip))
        ns.ip(f"addr change {spec} valid_lft 300 preferred_lft 0")  # deprecated
        changed = consumer.wait_for(
            is_event(
                netnotify.AddressEvent,
                Change.CHANGE,
                address=V6_ADDRESS.ip,
                dad_state=netnotify.NlDadState.DEPRECATED,
            )
        )
        ns.ip(f"addr del {spec}")
        deleted = consumer.wait_for(is_event(netnotify.AddressEvent, Change.DELETE, address=V6_ADDRESS.ip))
        assert isinstance(changed, netnotify.AddressEvent)
        assert isinstance(deleted, netnotify.AddressEvent)
        assert deleted.row.dad_state == netnotify.NlDadState.DEPRECATED
        assert deleted.row.on_link_prefix_length == 64
        assert deleted.row.preferred_lifetime == 0
        assert deleted.row.interface_index == lan.index


@pytest.mark.parametrize(
    ("prefix", "gateway"),
    [("10.59.0.0/24", "10.9.0.2"), ("2001:db8:59::/64", "2001:db8:1::2")],
    ids=["ipv4", "ipv6"],
)
def test_route_delete_carries_its_metric_and_protocol(ns: NetNS, lan: Lan, prefix: str, gateway: str) -> None:
    ns.ip(f"route add {prefix} via {gateway} dev v0 metric 77 proto dhcp")
    network = ipaddress.ip_network(prefix)
    known = netnotify.get_ip_forward_entry2(
        netnotify.MibIpForwardRow2(
            destination_prefix=network, next_hop=ipaddress.ip_address(gateway), interface_index=lan.index
        )
    )
    with netnotify.watch("route") as watcher, Consumer(watcher) as consumer:
        ns.ip(f"route del {prefix} via {gateway} dev v0 metric 77")
        event = consumer.wait_for(is_event(netnotify.RouteEvent, Change.DELETE, destination_prefix=network))
        assert isinstance(event, netnotify.RouteEvent)
        assert event.row.metric == 77
        assert event.row.protocol == netnotify.NlRouteProtocol.DHCP
        assert event.row.next_hop == ipaddress.ip_address(gateway)
        assert event.row == known
        assert event.complete


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["AF_INET", "AF_INET6"])
def test_family_filter(ns: NetNS, family: socket.AddressFamily) -> None:
    with netnotify.watch(family=family) as watcher, Consumer(watcher) as consumer:
        lan = Lan.create(ns)  # a link (both families), IPv4 and IPv6 addresses and their routes
        ns.ip(f"addr add {V4_ADDRESS} dev v0")
        ns.ip(f"addr add {V6_ADDRESS} dev v0 nodad")
        ns.ip("link set v0 mtu 1400")
        ns.ip(f"route add 10.58.0.0/24 via {lan.gateway4} dev v0")
        ns.ip(f"route add 2001:db8:58::/64 via {lan.gateway6} dev v0")
        marker = (
            ipaddress.IPv4Network("10.58.0.0/24")
            if family == socket.AF_INET
            else ipaddress.IPv6Network("2001:db8:58::/64")
        )
        consumer.wait_for(is_event(netnotify.RouteEvent, Change.ADD, destination_prefix=marker))
        events = consumer.wait_quiet()
    rows = consumer.row_events()
    assert len(rows) == len(events)
    assert {type(event) for event in rows} == set(ROW_EVENT_CLASSES), describe(events)
    wrong = [event for event in rows if row_family(event.row) != family]
    assert wrong == [], describe(wrong)
    assert any(
        is_event(netnotify.InterfaceEvent, Change.CHANGE, interface_index=lan.index, nl_mtu=1400)(event)
        for event in rows
    ), describe(events)


def test_kind_filter_address_only(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch("address") as watcher, Consumer(watcher) as consumer:
        ns.ip("link set v0 mtu 1400")
        ns.ip(f"route add 10.58.0.0/24 via {lan.gateway4} dev v0")
        ns.ip(f"addr add {V4_ADDRESS} dev v0")  # and its routes
        consumer.wait_for(is_event(netnotify.AddressEvent, Change.ADD, address=V4_ADDRESS.ip))
        events = consumer.wait_quiet()
    assert all(isinstance(event, netnotify.AddressEvent) for event in events), describe(events)


def test_kind_filter_route_and_interface(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch("route", Kind.INTERFACE) as watcher, Consumer(watcher) as consumer:
        ns.ip(f"addr add {V4_ADDRESS} dev v0")
        ns.ip("link set v0 mtu 1400")
        consumer.wait_for(is_event(netnotify.InterfaceEvent, Change.CHANGE, nl_mtu=1400))
        consumer.wait_for(is_event(netnotify.RouteEvent, Change.ADD, destination_prefix=V4_ADDRESS.network))
        events = consumer.wait_quiet()
    assert all(isinstance(event, (netnotify.RouteEvent, netnotify.InterfaceEvent)) for event in events), (
        describe(events)
    )


# ---------------------------------------------------------------- ignore_lifetime_changes


LIFETIME_ADDRESS = ipaddress.IPv6Interface("2001:db8:8::1/64")
LIFETIME_SPEC = f"{LIFETIME_ADDRESS} dev v0 nodad"


@pytest.mark.parametrize("ignore", [True, False], ids=["ignored", "reported"])
def test_ignore_lifetime_changes(ns: NetNS, ignore: bool) -> None:
    ns.veth()
    ns.ip(f"addr add {LIFETIME_SPEC} valid_lft 300 preferred_lft 200")
    address = LIFETIME_ADDRESS.ip
    with (
        netnotify.watch("address", ignore_lifetime_changes=ignore) as watcher,
        Consumer(watcher) as consumer,
    ):
        ns.ip(f"addr change {LIFETIME_SPEC} valid_lft 400 preferred_lft 300")  # only the lifetimes change
        ns.ip(f"addr add {V4_ADDRESS} dev v0")  # a marker
        consumer.wait_for(is_event(netnotify.AddressEvent, Change.ADD, address=V4_ADDRESS.ip))
        time.sleep(SETTLE)
        refreshed = [e for e in consumer.row_events() if e.row.address == address]  # type: ignore[union-attr]
        if ignore:
            assert refreshed == [], describe(refreshed)
        else:
            assert [e.change for e in refreshed] == [Change.CHANGE], describe(refreshed)
            assert 390 <= refreshed[0].row.valid_lifetime <= 400  # type: ignore[union-attr]
        # a change of more than lifetimes is reported either way
        ns.ip(f"addr change {LIFETIME_SPEC} valid_lft 400 preferred_lft 0")
        deprecated = consumer.wait_for(
            is_event(
                netnotify.AddressEvent,
                Change.CHANGE,
                address=address,
                dad_state=netnotify.NlDadState.DEPRECATED,
            )
        )
        assert deprecated.row.preferred_lifetime == 0  # type: ignore[union-attr]
