"""Threading contract: callbacks run on netnotify's thread, never overlap, and none is lost in a burst."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest
from nettest import ADD, Collector, Event, Lan, Match, NetNS, Registrations

pytestmark = pytest.mark.linux


class Overlap:
    """Counts callbacks running at once; each callback sleeps a little so that overlaps would show."""

    def __init__(self, sleep: float) -> None:
        self.sleep = sleep
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.sleep)
        with self.lock:
            self.running -= 1


def route_burst(ns: NetNS, count: int, second_octet: int) -> list[ipaddress.IPv4Network]:
    prefixes = [ipaddress.IPv4Network(f"10.{second_octet}.{n // 256}.{n % 256}/32") for n in range(count)]
    ns.batch([f"route add {prefix} via 10.9.0.2 dev v0" for prefix in prefixes])
    return prefixes


def test_callback_thread_and_context(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    context = {"mine": True}
    watch = regs.watch("route", socket.AF_INET, caller_context=context)
    prefix = route_burst(ns, 1, 100)[0]
    event = watch.wait_for(Match(ADD, destination_prefix=prefix))
    assert event.context is context
    assert event.thread != threading.get_ident(), "callback ran on the registering thread"


def test_callbacks_of_one_registration_never_overlap(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    overlap = Overlap(sleep=0.01)
    watch = regs.watch("route", socket.AF_INET, collector=Collector(then=overlap))
    prefixes = set(route_burst(ns, 50, 101))
    added = watch.wait_count(
        lambda event: event.type == ADD and event.row.destination_prefix in prefixes, 50, 30
    )
    assert {event.row.destination_prefix for event in added} == prefixes
    assert overlap.most == 1


def test_all_callbacks_share_one_dispatcher_thread_on_linux(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    overlap = Overlap(sleep=0.005)
    routes = regs.watch("route", collector=Collector(then=overlap))
    addresses = regs.watch("address", collector=Collector(then=overlap))
    interfaces = regs.watch("interface", collector=Collector(then=overlap))
    for n in range(10):
        ns.ip(f"addr add 10.9.1.{n + 1}/32 dev v0")  # an address and a local route each
        ns.ip(f"link set v0 mtu {1400 + n}")
    routes.wait_for(Match(ADD, destination_prefix=ipaddress.IPv4Network("10.9.1.10/32")))
    addresses.wait_for(Match(ADD, address=ipaddress.IPv4Address("10.9.1.10")))
    interfaces.wait_for(Match(interface_index=lan.index, nl_mtu=1409))
    threads = {event.thread for watch in (routes, addresses, interfaces) for event in watch.events}
    assert len(threads) == 1
    assert overlap.most == 1


def test_large_burst_loses_no_route(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    """A burst of 3000 routes to a slow callback (within the socket buffer): every one is reported."""
    watch = regs.watch("route", socket.AF_INET, collector=Collector(then=Overlap(sleep=0.0005)))
    prefixes = set(route_burst(ns, 3000, 102))
    added = watch.wait_count(
        lambda event: event.type == ADD and event.row.destination_prefix in prefixes, 3000, 60
    )
    assert {event.row.destination_prefix for event in added} == prefixes
