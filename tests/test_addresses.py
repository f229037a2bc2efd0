"""notify_unicast_ip_address_change: addresses added, changed and removed, and what their rows say."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import pytest
from nettest import (
    ADD,
    DELETE,
    IF_TYPE_ETHERNET,
    PARAMETER,
    SETTLE,
    Event,
    Match,
    NetNS,
    Registrations,
    luid,
)

import netnotify

pytestmark = pytest.mark.linux

INFINITE = 0xFFFFFFFF
PREFERRED = netnotify.NlDadState.PREFERRED
TENTATIVE = netnotify.NlDadState.TENTATIVE


@dataclass(frozen=True)
class AddressCase:
    address: str
    prefix_length: int
    options: str  # for `ip addr add`

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.address)

    @property
    def spec(self) -> str:
        return f"{self.address}/{self.prefix_length} dev v0 {self.options}"


CASES = [AddressCase("10.9.7.1", 24, ""), AddressCase("2001:db8:7::1", 64, "nodad")]
CASE_IDS = ["ipv4", "ipv6"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_address_added_then_removed(ns: NetNS, regs: Registrations, case: AddressCase) -> None:
    index = ns.veth()
    watch = regs.watch("address")
    ns.ip(f"addr add {case.spec}")
    row = watch.wait_for(Match(ADD, address=case.ip)).row
    assert isinstance(row, netnotify.MibUnicastIpAddressRow)
    assert row.interface_index == index
    assert row.interface_luid == luid(IF_TYPE_ETHERNET, index)
    assert row.on_link_prefix_length == case.prefix_length
    assert row.dad_state == PREFERRED
    assert isinstance(row.dad_state, netnotify.NlDadState)
    assert row.prefix_origin == netnotify.NlPrefixOrigin.MANUAL
    assert row.suffix_origin == netnotify.NlSuffixOrigin.MANUAL
    assert row.valid_lifetime == INFINITE
    assert row.preferred_lifetime == INFINITE
    assert row.scope_id == 0
    assert not row.skip_as_source

    ns.ip(f"addr del {case.spec}")
    gone = watch.wait_for(Match(DELETE, address=case.ip)).row
    assert gone.interface_index == index
    assert gone.on_link_prefix_length == case.prefix_length
    time.sleep(SETTLE)
    assert len(watch.matching(Match(ADD, address=case.ip))) == 1, watch.describe()
    assert len(watch.matching(Match(DELETE, address=case.ip))) == 1, watch.describe()


def test_creation_time_stamp_is_a_recent_filetime(ns: NetNS, regs: Registrations) -> None:
    ns.veth()
    watch = regs.watch("address")
    before = time.time()
    ns.ip(f"addr add {CASES[0].spec}")
    row = watch.wait_for(Match(ADD, address=CASES[0].ip)).row
    unix_seconds = row.creation_time_stamp / 10_000_000 - 11_644_473_600  # FILETIME epoch is 1601
    assert before - 5 < unix_seconds < time.time() + 5


def test_lifetimes_and_deprecation(ns: NetNS, regs: Registrations) -> None:
    ns.veth()
    watch = regs.watch("address")
    address = ipaddress.ip_address("2001:db8:8::1")
    ns.ip(f"addr add {address}/64 dev v0 nodad valid_lft 300 preferred_lft 200")
    row = watch.wait_for(Match(ADD, address=address)).row
    assert 290 <= row.valid_lifetime <= 300
    assert 190 <= row.preferred_lifetime <= 200
    assert row.dad_state == PREFERRED
    ns.ip(f"addr change {address}/64 dev v0 nodad valid_lft 300 preferred_lft 0")
    row = watch.wait_for(Match(PARAMETER, address=address, dad_state=netnotify.NlDadState.DEPRECATED)).row
    assert row.preferred_lifetime == 0


def test_tentative_address_becomes_preferred(ns: NetNS, regs: Registrations) -> None:
    index = ns.veth(up=True, link_local=False)
    watch = regs.watch("address")
    address = ipaddress.ip_address("2001:db8:9::1")
    ns.ip(f"addr add {address}/64 dev v0")  # duplicate address detection runs for 1 to 2 seconds
    added = watch.wait_for(Match(ADD, address=address)).row
    assert added.dad_state == TENTATIVE
    changed = watch.wait_for(Match(PARAMETER, address=address, dad_state=PREFERRED), timeout=10).row
    assert changed.interface_index == index


def test_kernel_link_local_address(ns: NetNS, regs: Registrations) -> None:
    watch = regs.watch("address")
    index = ns.veth(up=True)

    def link_local_added(event: Event) -> bool:
        row = event.row
        return (
            event.type == ADD
            and row is not None
            and row.address.is_link_local
            and row.interface_index == index
        )

    event = watch.wait_for(link_local_added, timeout=10)  # announced once its DAD is over
    row = event.row
    assert isinstance(row.address, ipaddress.IPv6Address)
    assert row.address.scope_id == str(index)
    assert row.scope_id == index
    assert row.on_link_prefix_length == 64
    assert row.prefix_origin == netnotify.NlPrefixOrigin.WELL_KNOWN
    assert row.suffix_origin == netnotify.NlSuffixOrigin.LINK_LAYER_ADDRESS
    watch.wait_for(Match(address=row.address, dad_state=PREFERRED), timeout=10)


def test_loopback_addresses_are_well_known(ns: NetNS) -> None:
    rows = {row.address: row for row in netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC)}
    for text in ("127.0.0.1", "::1"):
        row = rows[ipaddress.ip_address(text)]
        assert row.prefix_origin == netnotify.NlPrefixOrigin.WELL_KNOWN
        assert row.suffix_origin == netnotify.NlSuffixOrigin.WELL_KNOWN
        assert row.dad_state == PREFERRED
        assert row.interface_index == ns.ifindex("lo")
