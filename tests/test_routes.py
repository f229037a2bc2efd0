"""notify_route_change2: routes added, replaced and deleted, IPv4 and IPv6, and the kernel's own routes."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

import pytest
from nettest import (
    ADD,
    DELETE,
    IF_TYPE_ETHERNET,
    PARAMETER,
    SETTLE,
    Lan,
    Match,
    NetNS,
    Registrations,
    luid,
)

import netnotify

pytestmark = pytest.mark.linux

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RouteCase:
    prefix: Network
    gateway: Address  # on v0's subnet (see nettest.Lan)
    other_gateway: Address
    metric: int = 7

    def spec(self, gateway: Address | None = None, extra: str = "") -> str:
        return f"{self.prefix} via {gateway or self.gateway} dev v0 metric {self.metric} {extra}"


CASES = [
    RouteCase(
        ipaddress.IPv4Network("10.50.0.0/24"),
        ipaddress.IPv4Address("10.9.0.2"),
        ipaddress.IPv4Address("10.9.0.3"),
    ),
    RouteCase(
        ipaddress.IPv6Network("2001:db8:50::/64"),
        ipaddress.IPv6Address("2001:db8:1::2"),
        ipaddress.IPv6Address("2001:db8:1::3"),
    ),
]
CASE_IDS = ["ipv4", "ipv6"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_route_added(ns: NetNS, regs: Registrations, lan: Lan, case: RouteCase) -> None:
    watch = regs.watch("route")
    ns.ip(f"route add {case.spec()}")
    row = watch.wait_for(Match(ADD, destination_prefix=case.prefix)).row
    assert isinstance(row, netnotify.MibIpForwardRow2)
    assert row.next_hop == case.gateway
    assert row.interface_index == lan.index
    assert row.interface_luid == luid(IF_TYPE_ETHERNET, lan.index)
    assert row.metric == case.metric
    assert row.protocol == netnotify.NlRouteProtocol.NETMGMT  # `ip route add` says proto boot
    assert row.origin == netnotify.NlRouteOrigin.MANUAL
    assert not row.loopback
    assert row.immortal
    time.sleep(SETTLE)
    assert len(watch.matching(Match(destination_prefix=case.prefix))) == 1, watch.describe()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_route_replaced_with_other_protocol(
    ns: NetNS, regs: Registrations, lan: Lan, case: RouteCase
) -> None:
    ns.ip(f"route add {case.spec()}")
    watch = regs.watch("route")
    ns.ip(f"route replace {case.spec(extra='proto dhcp')}")
    row = watch.wait_for(Match(PARAMETER, destination_prefix=case.prefix)).row
    assert row.protocol == netnotify.NlRouteProtocol.DHCP
    assert row.origin == netnotify.NlRouteOrigin.DHCP
    assert row.next_hop == case.gateway
    assert row.metric == case.metric
    time.sleep(SETTLE)
    assert len(watch.matching(Match(destination_prefix=case.prefix))) == 1, watch.describe()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_route_replaced_with_other_next_hop(
    ns: NetNS, regs: Registrations, lan: Lan, case: RouteCase
) -> None:
    ns.ip(f"route add {case.spec()}")
    watch = regs.watch("route")
    ns.ip(f"route replace {case.spec(case.other_gateway)}")
    old = watch.wait_for(Match(DELETE, destination_prefix=case.prefix, next_hop=case.gateway)).row
    new = watch.wait_for(Match(ADD, destination_prefix=case.prefix, next_hop=case.other_gateway)).row
    assert old.interface_index == new.interface_index == lan.index
    assert old.metric == new.metric == case.metric
    time.sleep(SETTLE)
    assert len(watch.matching(Match(destination_prefix=case.prefix))) == 2, watch.describe()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_route_deleted(ns: NetNS, regs: Registrations, lan: Lan, case: RouteCase) -> None:
    ns.ip(f"route add {case.spec()}")
    watch = regs.watch("route")
    ns.ip(f"route del {case.spec()}")
    row = watch.wait_for(Match(DELETE, destination_prefix=case.prefix)).row
    assert row.next_hop == case.gateway
    assert row.interface_index == lan.index
    assert row.metric == case.metric
    time.sleep(SETTLE)
    assert len(watch.matching(Match(destination_prefix=case.prefix))) == 1, watch.describe()


def test_multipath_route_is_one_row_per_next_hop(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    watch = regs.watch("route")
    prefix = ipaddress.IPv4Network("10.60.0.0/24")
    ns.ip(f"route add {prefix} nexthop via 10.9.0.2 dev v0 nexthop via 10.9.0.3 dev v0")
    for gateway in ("10.9.0.2", "10.9.0.3"):
        row = watch.wait_for(
            Match(ADD, destination_prefix=prefix, next_hop=ipaddress.ip_address(gateway))
        ).row
        assert row.interface_index == lan.index
    ns.ip(f"route del {prefix}")
    watch.wait_count(Match(DELETE, destination_prefix=prefix), 2)


def test_kernel_routes_of_an_address(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    """Adding 10.9.5.1/24 makes the kernel add an on-link prefix route (main) and a local route (local)."""
    watch = regs.watch("route")
    ns.ip("addr add 10.9.5.1/24 dev v0")
    on_link = watch.wait_for(Match(ADD, destination_prefix=ipaddress.IPv4Network("10.9.5.0/24"))).row
    assert on_link.next_hop == ipaddress.IPv4Address("0.0.0.0")
    assert on_link.interface_index == lan.index
    assert on_link.protocol == netnotify.NlRouteProtocol.LOCAL
    assert on_link.origin == netnotify.NlRouteOrigin.WELL_KNOWN
    assert not on_link.loopback
    local = watch.wait_for(Match(ADD, destination_prefix=ipaddress.IPv4Network("10.9.5.1/32"))).row
    assert local.loopback
    assert local.protocol == netnotify.NlRouteProtocol.LOCAL


def test_route_in_another_table_is_not_reported(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    watch = regs.watch("route")
    ns.ip("route add 10.70.0.0/24 via 10.9.0.2 dev v0 table 100")
    marker = ipaddress.IPv4Network("10.71.0.0/24")
    ns.ip(f"route add {marker} via 10.9.0.2 dev v0")
    watch.wait_for(Match(ADD, destination_prefix=marker))
    time.sleep(SETTLE)
    assert not watch.matching(Match(destination_prefix=ipaddress.IPv4Network("10.70.0.0/24"))), (
        watch.describe()
    )
