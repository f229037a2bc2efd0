"""initial_notification: exactly one INITIAL_NOTIFICATION with row None, first, only when asked for."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

import pytest
from nettest import ADD, INITIAL, SETTLE, Event, Match, NetNS, Registrations

pytestmark = pytest.mark.linux

ADDRESS = ipaddress.IPv4Address("10.7.0.1")


def make_change(ns: NetNS) -> int:
    """A veth with an address: an interface, an address and a (local) route are added."""
    index = ns.veth()
    ns.ip(f"addr add {ADDRESS}/24 dev v0")
    return index


def change_seen(kind: str, index: int) -> Callable[[Event], bool]:
    if kind == "interface":
        return Match(ADD, interface_index=index)
    if kind == "address":
        return Match(ADD, address=ADDRESS)
    return Match(ADD, destination_prefix=ipaddress.IPv4Network(f"{ADDRESS}/32"))


@pytest.mark.parametrize("kind", ["interface", "address", "route"])
@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET], ids=["AF_UNSPEC", "AF_INET"])
def test_initial_notification_comes_once_and_first(
    ns: NetNS, regs: Registrations, kind: str, family: int
) -> None:
    context = object()
    watch = regs.watch(kind, family, initial_notification=True, caller_context=context)
    first = watch.wait_for(lambda event: event.type == INITIAL)
    assert first.row is None
    assert first.context is context
    index = make_change(ns)
    watch.wait_for(change_seen(kind, index))
    time.sleep(SETTLE)
    events = watch.events
    assert events[0].type == INITIAL, watch.describe()
    assert events[0].row is None
    assert [event.type for event in events].count(INITIAL) == 1, watch.describe()
    assert all(event.row is not None for event in events[1:]), watch.describe()


@pytest.mark.parametrize("kind", ["interface", "address", "route"])
def test_no_initial_notification_unless_asked(ns: NetNS, regs: Registrations, kind: str) -> None:
    watch = regs.watch(kind)
    index = make_change(ns)
    watch.wait_for(change_seen(kind, index))
    time.sleep(SETTLE)
    assert not [event for event in watch.events if event.type == INITIAL or event.row is None], (
        watch.describe()
    )
