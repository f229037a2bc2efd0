"""One flooded registration does not starve the others (Linux: one dispatcher thread serves every socket).

A registration whose callback is slower than the changes it is told about always has messages queued. The
dispatcher must still serve the other registrations in between: start new ones (their initial
notification), deliver their changes, stop cancelled ones. Found under Valgrind (tests/valgrind/), where
every callback is slow: a registration made while another one's socket was never empty got nothing at all.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from nettest import ADD, INITIAL, Collector, Lan, Match, NetNS, Registrations

pytestmark = pytest.mark.linux

FLOOD_ROUTES = 500


def flood(ns: NetNS, lan: Lan, stop: threading.Event) -> None:
    """Adds and deletes routes in bursts until stopped (a thread of the test's namespace)."""
    adds = [f"route add 10.66.{i // 256}.{i % 256}/32 via {lan.gateway4}" for i in range(FLOOD_ROUTES)]
    deletes = [line.replace("route add", "route del").split(" via ")[0] for line in adds]
    while not stop.is_set():
        ns.batch(adds)
        ns.batch(deletes)


def test_a_new_registration_is_served_while_another_socket_is_flooded(
    ns: NetNS, lan: Lan, regs: Registrations
) -> None:
    slow = regs.watch("route", socket.AF_INET, collector=Collector(then=lambda event: time.sleep(0.005)))
    stop = threading.Event()
    flooder = threading.Thread(target=flood, args=(ns, lan, stop), daemon=True)  # inherits the namespace
    flooder.start()
    try:
        slow.wait_count(lambda event: True, 50, timeout=20)  # its socket now always has messages queued
        other = regs.watch("interface", socket.AF_UNSPEC, initial_notification=True)
        other.wait_for(lambda event: event.type == INITIAL, timeout=5)
        index = ns.veth("v2", "v3")
        other.wait_for(Match(ADD, interface_index=index), timeout=5)
        assert flooder.is_alive(), "the flood ended early: the test proved nothing"
    finally:
        stop.set()
        flooder.join(60)
