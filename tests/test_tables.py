"""get_*_table agree with `ip -j` in the namespace; get_*_entry complete key rows and raise NotFoundError."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from nettest import (
    ADD,
    IF_TYPE_ETHERNET,
    IF_TYPE_LOOPBACK,
    PARAMETER,
    Lan,
    Match,
    NetNS,
    Registrations,
    luid,
    without_scope,
)

import netnotify

pytestmark = pytest.mark.linux

T = TypeVar("T")
U = TypeVar("U")
IFTYPES = {"ether": IF_TYPE_ETHERNET, "loopback": IF_TYPE_LOOPBACK}
FAMILIES = (socket.AF_INET, socket.AF_INET6)
RouteKey = tuple[Any, Any, int, int]  # destination prefix, next hop (no scope), interface index, metric


def consistent(snapshot: Callable[[], T], table: Callable[[], U]) -> tuple[T, U]:
    """A table read between two equal `ip` snapshots, so that both describe the same state."""
    for _ in range(10):
        before = snapshot()
        rows = table()
        if snapshot() == before:
            return before, rows
        time.sleep(0.3)
    raise AssertionError("the namespace kept changing while the table was read")


def add_routes(ns: NetNS) -> None:
    ns.ip("route add 10.50.0.0/24 via 10.9.0.2 dev v0 metric 7")
    ns.ip("route add 10.60.0.0/24 nexthop via 10.9.0.2 dev v0 nexthop via 10.9.0.3 dev v0")
    ns.ip("route add default via 10.9.0.2 dev v0")
    ns.ip("route add 2001:db8:50::/64 via 2001:db8:1::2 dev v0 metric 7")
    ns.ip("route add 10.70.0.0/24 via 10.9.0.2 dev v0 table 100")  # another table: not reported


def ip_routes(ns: NetNS) -> set[RouteKey]:
    """The routes of the main and local tables, one key per next hop, as `ip -j route` shows them."""
    keys: set[RouteKey] = set()
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        for route in ns.ip_json(f"-{version} route show table all"):
            if route.get("table", "main") not in ("main", "local"):
                continue
            prefix = ipaddress.ip_network(everything if route["dst"] == "default" else route["dst"])
            for hop in route.get("nexthops", [route]):
                gateway = ipaddress.ip_address(hop.get("gateway", everything.split("/")[0]))
                index = ns.ifindex(hop["dev"]) if "dev" in hop else 0
                keys.add((prefix, gateway, index, route.get("metric", 0)))
    return keys


def route_key(row: netnotify.MibIpForwardRow2) -> RouteKey:
    return (row.destination_prefix, without_scope(row.next_hop), row.interface_index, row.metric)


# ---------------------------------------------------------------- tables


def test_interface_table_matches_ip_link(ns: NetNS, lan: Lan) -> None:
    links, rows = consistent(lambda: ns.ip_json("link"), lambda: netnotify.get_ip_interface_table(0))
    by_key = {(row.family, row.interface_index): row for row in rows}
    assert len(by_key) == len(rows), "two rows for one interface and family"
    assert set(by_key) == {(family, link["ifindex"]) for link in links for family in FAMILIES}
    for link in links:
        for family in FAMILIES:
            row = by_key[(family, link["ifindex"])]
            assert row.nl_mtu == link["mtu"]
            assert row.interface_luid == luid(IFTYPES[link["link_type"]], link["ifindex"])
            running = link["operstate"] in ("UP", "UNKNOWN")  # IFF_RUNNING is netif_oper_up()
            assert row.connected == ("UP" in link["flags"] and running), link
    for family in FAMILIES:
        keys = {(row.family, row.interface_index) for row in netnotify.get_ip_interface_table(family)}
        assert keys == {key for key in by_key if key[0] == family}


def test_address_table_matches_ip_addr(ns: NetNS, lan: Lan) -> None:
    ns.ip("addr add 10.9.0.20/24 dev v0")
    ns.ip("addr add 10.20.0.1/16 dev v1")
    links, rows = consistent(lambda: ns.ip_json("addr"), lambda: netnotify.get_unicast_ip_address_table(0))
    expected = {
        (ipaddress.ip_address(info["local"]), link["ifindex"], info["prefixlen"])
        for link in links
        for info in link["addr_info"]
    }
    got = [(without_scope(row.address), row.interface_index, row.on_link_prefix_length) for row in rows]
    assert len(got) == len(set(got)), "an address reported twice"
    assert set(got) == expected
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        part = netnotify.get_unicast_ip_address_table(family)
        assert {row.address for row in part} == {
            row.address for row in rows if row.address.version == version
        }


def test_route_table_matches_ip_route(ns: NetNS, lan: Lan) -> None:
    add_routes(ns)
    expected, rows = consistent(lambda: ip_routes(ns), lambda: netnotify.get_ip_forward_table2(0))
    got = [route_key(row) for row in rows]
    assert len(got) == len(set(got)), "a route reported twice"
    assert set(got) == expected
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        part = {route_key(row) for row in netnotify.get_ip_forward_table2(family)}
        assert part == {key for key in expected if key[0].version == version}


# ---------------------------------------------------------------- entries


def test_entries_of_callback_rows(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    interfaces = regs.watch("interface")
    addresses = regs.watch("address")
    routes = regs.watch("route")
    ns.ip("link set v0 mtu 1400")
    ns.ip("addr add 10.9.0.30/24 dev v0")
    ns.ip("route add 10.55.0.0/24 via 10.9.0.2 dev v0 metric 9")

    for family in FAMILIES:
        row = interfaces.wait_for(Match(PARAMETER, family=family, interface_index=lan.index, nl_mtu=1400)).row
        entry = netnotify.get_ip_interface_entry(row)
        assert (entry.family, entry.interface_index, entry.interface_luid) == (
            row.family,
            row.interface_index,
            row.interface_luid,
        )
        assert entry.nl_mtu == 1400

    row = addresses.wait_for(Match(ADD, address=ipaddress.IPv4Address("10.9.0.30"))).row
    address = netnotify.get_unicast_ip_address_entry(row)
    assert (address.address, address.interface_index, address.interface_luid) == (
        row.address,
        row.interface_index,
        row.interface_luid,
    )
    assert address.on_link_prefix_length == 24
    assert address.creation_time_stamp == row.creation_time_stamp

    row = routes.wait_for(Match(ADD, destination_prefix=ipaddress.IPv4Network("10.55.0.0/24"))).row
    route = netnotify.get_ip_forward_entry2(row)
    assert route_key(route) == route_key(row)
    assert route.interface_luid == row.interface_luid
    assert route.protocol == row.protocol


@pytest.mark.parametrize("family", FAMILIES, ids=["AF_INET", "AF_INET6"])
def test_interface_entry_from_a_key_row(ns: NetNS, lan: Lan, family: int) -> None:
    entry = netnotify.get_ip_interface_entry(
        netnotify.MibIpInterfaceRow(family=family, interface_index=lan.index)
    )
    assert entry.family == family
    assert entry.interface_index == lan.index
    assert entry.interface_luid == luid(IF_TYPE_ETHERNET, lan.index)
    assert entry.nl_mtu == 1500
    by_luid = netnotify.MibIpInterfaceRow(family=family, interface_luid=luid(IF_TYPE_ETHERNET, lan.index))
    assert netnotify.get_ip_interface_entry(by_luid).interface_index == lan.index


def test_interface_entry_per_family_configuration(ns: NetNS, lan: Lan) -> None:
    ns.sysctl("net.ipv6.conf.v0.mtu", 1300)  # mtu6 only, the link keeps 1500
    ns.sysctl("net.ipv4.conf.v0.forwarding", 1)
    ns.sysctl("net.ipv6.conf.v0.dad_transmits", 3)
    v4 = netnotify.get_ip_interface_entry(
        netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_index=lan.index)
    )
    v6 = netnotify.get_ip_interface_entry(
        netnotify.MibIpInterfaceRow(family=socket.AF_INET6, interface_index=lan.index)
    )
    assert (v4.nl_mtu, v6.nl_mtu) == (1500, 1300)
    assert v4.forwarding_enabled
    assert not v6.forwarding_enabled
    assert v6.dad_transmits == 3


def test_address_entry_from_a_key_row(ns: NetNS, lan: Lan) -> None:
    for interface in (lan.v4, lan.v6):
        key = netnotify.MibUnicastIpAddressRow(address=interface.ip, interface_index=lan.index)
        entry = netnotify.get_unicast_ip_address_entry(key)
        assert entry.address == interface.ip
        assert entry.on_link_prefix_length == interface.network.prefixlen
        assert entry.interface_luid == luid(IF_TYPE_ETHERNET, lan.index)
        assert entry.dad_state == netnotify.NlDadState.PREFERRED


def test_route_entry_from_a_key_row(ns: NetNS, lan: Lan) -> None:
    add_routes(ns)
    key = netnotify.MibIpForwardRow2(
        destination_prefix=ipaddress.IPv4Network("10.50.0.0/24"),
        next_hop=ipaddress.IPv4Address("10.9.0.2"),
        interface_index=lan.index,
    )
    entry = netnotify.get_ip_forward_entry2(key)
    assert entry.metric == 7
    assert entry.interface_luid == luid(IF_TYPE_ETHERNET, lan.index)
    assert entry.protocol == netnotify.NlRouteProtocol.NETMGMT


ABSENT: list[tuple[Callable[[Any], object], Callable[[Lan], object]]] = [
    (
        netnotify.get_ip_interface_entry,
        lambda lan: netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_index=4242),
    ),
    (
        netnotify.get_unicast_ip_address_entry,
        lambda lan: netnotify.MibUnicastIpAddressRow(
            address=ipaddress.IPv4Address("10.9.9.9"), interface_index=lan.index
        ),
    ),
    (
        netnotify.get_ip_forward_entry2,
        lambda lan: netnotify.MibIpForwardRow2(
            destination_prefix=ipaddress.IPv4Network("10.123.0.0/24"),
            next_hop=ipaddress.IPv4Address("10.9.0.2"),
            interface_index=lan.index,
        ),
    ),
]


@pytest.mark.parametrize(("get", "key"), ABSENT, ids=["interface", "address", "route"])
def test_absent_entry_raises_not_found(
    ns: NetNS, lan: Lan, get: Callable[[Any], object], key: Callable[[Lan], object]
) -> None:
    with pytest.raises(netnotify.NotFoundError) as caught:
        get(key(lan))
    assert caught.value.winerror in (1168, 2)
    assert isinstance(caught.value, OSError)
