"""A registration for one address family never sees a row of the other, for all three kinds."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

import pytest
from nettest import ADD, PARAMETER, SETTLE, Event, Lan, Match, NetNS, Registrations, row_family

pytestmark = pytest.mark.linux

# Per family: an address and a route to add, in v0's subnets (see nettest.Lan).
CHANGES: dict[int, tuple[str, str]] = {
    socket.AF_INET: ("10.9.0.10/24", "10.80.0.0/24 via 10.9.0.2 dev v0"),
    socket.AF_INET6: ("2001:db8:1::10/64", "2001:db8:80::/64 via 2001:db8:1::2 dev v0"),
}
MTU_MARKER = 1400


def make_changes(ns: NetNS, family: int) -> None:
    address, route = CHANGES[family]
    ns.ip(f"addr add {address} dev v0 nodad" if family == socket.AF_INET6 else f"addr add {address} dev v0")
    ns.ip(f"route add {route}")


def marker(kind: str, family: int, lan: Lan) -> Callable[[Event], bool]:
    """The event that the last change, made in the family of the registration, produces."""
    address, route = CHANGES[family]
    if kind == "interface":
        return Match(PARAMETER, family=family, interface_index=lan.index, nl_mtu=MTU_MARKER)
    if kind == "address":
        return Match(ADD, address=ipaddress.ip_interface(address).ip)
    return Match(ADD, destination_prefix=ipaddress.ip_network(route.split()[0]))


@pytest.mark.parametrize("kind", ["interface", "address", "route"])
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["AF_INET", "AF_INET6"])
def test_registration_sees_only_its_family(
    ns: NetNS, regs: Registrations, lan: Lan, kind: str, family: socket.AddressFamily
) -> None:
    other = socket.AF_INET6 if family == socket.AF_INET else socket.AF_INET
    watch = regs.watch(kind, family)
    make_changes(ns, other)  # first the other family, so that its rows would come before the marker
    if kind == "interface":
        ns.ip(f"link set v0 mtu {MTU_MARKER}")  # one link message: a row for each family
    else:
        make_changes(ns, family)
    watch.wait_for(marker(kind, family, lan))
    time.sleep(SETTLE)
    strays = [event for event in watch.events if row_family(event.row) != family]
    assert not strays, watch.describe()
