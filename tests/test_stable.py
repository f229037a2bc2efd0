"""notify_stable_unicast_ip_address_table: the table at once when stable, else later through the callback."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest
from nettest import SETTLE, NetNS, wait_until

import netnotify

pytestmark = pytest.mark.linux

PREFERRED = netnotify.NlDadState.PREFERRED
TENTATIVE = netnotify.NlDadState.TENTATIVE
V4 = ipaddress.IPv4Address("10.5.0.1")
V6 = ipaddress.IPv6Address("2001:db8:5::1")


class TableCallback:
    def __init__(self) -> None:
        self.calls: list[tuple[object, list[netnotify.MibUnicastIpAddressRow]]] = []
        self.called = threading.Event()

    def __call__(self, context: object, table: list[netnotify.MibUnicastIpAddressRow]) -> None:
        self.calls.append((context, table))
        self.called.set()


def add_tentative_address(ns: NetNS) -> None:
    """An IPv6 address under duplicate address detection: tentative for 1 to 2 seconds."""
    ns.veth(up=True, link_local=False)
    ns.sysctl("net.ipv6.conf.v0.dad_transmits", 1)
    ns.ip(f"addr add {V6}/64 dev v0")
    assert ns.is_tentative(str(V6)), "precondition: the address must still be tentative"


@pytest.mark.parametrize(
    ("family", "expected"),
    [(socket.AF_INET, {V4}), (socket.AF_INET6, {V6}), (socket.AF_UNSPEC, {V4, V6})],
    ids=["AF_INET", "AF_INET6", "AF_UNSPEC"],
)
def test_stable_table_is_returned_at_once(
    ns: NetNS, family: int, expected: set[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> None:
    ns.veth()  # down: no link-local address, nothing tentative
    ns.ip(f"addr add {V4}/24 dev v0")
    ns.ip(f"addr add {V6}/64 dev v0 nodad")
    callback = TableCallback()
    result = netnotify.notify_stable_unicast_ip_address_table(family, callback)
    assert isinstance(result, list), f"expected the table now, got {result!r}"
    addresses = {row.address for row in result}
    assert addresses & {V4, V6} == expected  # and nothing of the other family
    assert all(row.dad_state != TENTATIVE for row in result)
    time.sleep(SETTLE)
    assert not callback.called.is_set()


def test_stable_table_is_delivered_when_dad_ends(ns: NetNS) -> None:
    add_tentative_address(ns)
    callback = TableCallback()
    context = object()
    result = netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, callback, context)
    assert isinstance(result, netnotify.NotificationHandle), f"expected a handle, got {result!r}"
    try:
        assert result.active
        assert callback.called.wait(10), "the stable table never came"
        wait_until(lambda: not result.active, 2, "the handle to become inactive after its callback")
        time.sleep(SETTLE)
        assert len(callback.calls) == 1
        got_context, table = callback.calls[0]
        assert got_context is context
        rows = {row.address: row for row in table}
        assert rows[V6].dad_state == PREFERRED
        assert all(row.dad_state != TENTATIVE for row in table)
        assert all(row.address.version == 6 for row in table)
    finally:
        result.cancel()


def test_cancelled_stable_wait_never_calls_back(ns: NetNS) -> None:
    add_tentative_address(ns)
    callback = TableCallback()
    result = netnotify.notify_stable_unicast_ip_address_table(socket.AF_INET6, callback)
    assert isinstance(result, netnotify.NotificationHandle), f"expected a handle, got {result!r}"
    netnotify.cancel_mib_change_notify2(result)
    assert not result.active
    wait_until(lambda: not ns.is_tentative(str(V6)), 10, "duplicate address detection to end")
    time.sleep(SETTLE)
    assert not callback.called.is_set()
