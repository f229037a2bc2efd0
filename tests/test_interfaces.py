"""notify_ip_interface_change: links created, brought up and down, MTU changed, deleted."""

from __future__ import annotations

import socket
import time

import pytest
from nettest import (
    ADD,
    DELETE,
    IF_TYPE_ETHERNET,
    PARAMETER,
    SETTLE,
    Match,
    NetNS,
    Registrations,
    luid,
)

import netnotify

pytestmark = pytest.mark.linux

FAMILIES = (socket.AF_INET, socket.AF_INET6)


def test_created_link_is_added_once_per_family(ns: NetNS, regs: Registrations) -> None:
    watch = regs.watch("interface")
    index = ns.veth("v0", "v1")
    peer = ns.ifindex("v1")
    for link in (index, peer):
        for family in FAMILIES:
            event = watch.wait_for(Match(ADD, family=family, interface_index=link))
            assert isinstance(event.row, netnotify.MibIpInterfaceRow)
            assert isinstance(event.row.family, socket.AddressFamily)
            assert isinstance(event.type, netnotify.MibNotificationType)
            assert event.row.interface_luid == luid(IF_TYPE_ETHERNET, link)
    time.sleep(SETTLE)
    for link in (index, peer):
        for family in FAMILIES:
            added = watch.matching(Match(ADD, family=family, interface_index=link))
            assert len(added) == 1, watch.describe()


def test_linux_interface_row_constants(ns: NetNS, regs: Registrations) -> None:
    watch = regs.watch("interface")
    index = ns.veth()
    for family in FAMILIES:
        row = watch.wait_for(Match(ADD, family=family, interface_index=index)).row
        assert row.weak_host_send
        assert row.weak_host_receive
        assert row.metric == 0
        assert not row.use_automatic_metric
        assert not row.advertising_enabled
        assert row.nl_mtu == 1500
        assert not row.connected  # created down
        assert len(row.zone_indices) == 16


@pytest.mark.parametrize("family", FAMILIES, ids=["AF_INET", "AF_INET6"])
def test_link_up_then_down_changes_connected(ns: NetNS, regs: Registrations, family: int) -> None:
    index = ns.veth()
    watch = regs.watch("interface", family)
    ns.ip("link set v0 up")
    ns.ip("link set v1 up")  # the peer up gives v0 its carrier: IFF_RUNNING
    watch.wait_for(Match(PARAMETER, family=family, interface_index=index, connected=True))
    ns.ip("link set v0 down")
    watch.wait_for(Match(PARAMETER, family=family, interface_index=index, connected=False))
    # The link existed before the registration: only parameter changes, never an add or a delete.
    assert not [event for event in watch.events if event.type != PARAMETER], watch.describe()


def test_mtu_change_is_a_parameter_notification(ns: NetNS, regs: Registrations) -> None:
    index = ns.veth()
    watch = regs.watch("interface")
    ns.ip("link set v0 mtu 1400")
    for family in FAMILIES:
        row = watch.wait_for(Match(PARAMETER, family=family, interface_index=index, nl_mtu=1400)).row
        assert row.interface_luid == luid(IF_TYPE_ETHERNET, index)


def test_mtu_below_1280_removes_the_ipv6_row_and_back_adds_it(ns: NetNS, regs: Registrations) -> None:
    index = ns.veth()
    watch = regs.watch("interface")
    ns.ip("link set v0 mtu 1200")
    watch.wait_for(Match(PARAMETER, family=socket.AF_INET, interface_index=index, nl_mtu=1200))
    watch.wait_for(Match(DELETE, family=socket.AF_INET6, interface_index=index))
    ns.ip("link set v0 mtu 1500")
    watch.wait_for(Match(PARAMETER, family=socket.AF_INET, interface_index=index, nl_mtu=1500))
    watch.wait_for(Match(ADD, family=socket.AF_INET6, interface_index=index, nl_mtu=1500))


def test_deleted_link_is_deleted_once_per_family(ns: NetNS, regs: Registrations) -> None:
    index = ns.veth()
    peer = ns.ifindex("v1")
    watch = regs.watch("interface")
    ns.ip("link del v0")  # takes the peer with it
    for link in (index, peer):
        for family in FAMILIES:
            row = watch.wait_for(Match(DELETE, family=family, interface_index=link)).row
            assert row.interface_luid == luid(IF_TYPE_ETHERNET, link)
    time.sleep(SETTLE)
    for link in (index, peer):
        for family in FAMILIES:
            assert len(watch.matching(Match(DELETE, family=family, interface_index=link))) == 1, (
                watch.describe()
            )
    assert not watch.matching(Match(ADD)), watch.describe()
