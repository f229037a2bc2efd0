"""Cancellation: waits for a running callback, works from inside one, and errors; raising callbacks."""

from __future__ import annotations

import gc
import ipaddress
import socket
import sys
import threading
import time
from typing import Any

import pytest
from nettest import (
    ADD,
    SETTLE,
    BackgroundCall,
    Collector,
    Event,
    Lan,
    Match,
    NetNS,
    Registrations,
    wait_until,
)

import netnotify

pytestmark = pytest.mark.linux


def add_route(ns: NetNS, n: int) -> ipaddress.IPv4Network:
    prefix = ipaddress.IPv4Network(f"10.51.{n}.0/24")
    ns.ip(f"route add {prefix} via 10.9.0.2 dev v0")
    return prefix


def active(handle: netnotify.NotificationHandle) -> bool:
    return handle.active  # read afresh each time (mypy would narrow `handle.active` after an assert)


def assert_no_more_callbacks(ns: NetNS, watch: Collector) -> None:
    seen = len(watch.events)
    add_route(ns, 200)
    add_route(ns, 201)
    time.sleep(SETTLE)
    assert len(watch.events) == seen, f"a callback ran after cancel:\n{watch.describe()}"


def test_cancel_waits_for_the_running_callback(ns: NetNS, regs: Registrations, lan: Lan) -> None:
    entered = threading.Event()
    release = threading.Event()
    callback_returned: list[float] = []

    def block(event: Event) -> None:
        entered.set()
        release.wait(10)
        callback_returned.append(time.monotonic())

    watch = regs.watch("route", socket.AF_INET, collector=Collector(then=block))
    handle = watch.handle
    assert handle is not None
    add_route(ns, 1)
    assert entered.wait(5), "no callback came"

    cancel = BackgroundCall(lambda: netnotify.cancel_mib_change_notify2(handle))
    cancel.thread.join(0.5)
    assert cancel.thread.is_alive(), "cancel returned while a callback of the registration was running"
    assert not callback_returned
    release.set()
    cancel.thread.join(5)
    assert not cancel.thread.is_alive(), "cancel did not return after the callback returned (deadlock?)"
    assert cancel.error is None
    assert cancel.returned_at is not None
    assert callback_returned
    assert cancel.returned_at >= callback_returned[0]
    assert not handle.active
    assert_no_more_callbacks(ns, watch)


@pytest.mark.parametrize("how", ["cancel_mib_change_notify2", "handle.cancel"])
def test_cancel_from_inside_the_callback(ns: NetNS, regs: Registrations, lan: Lan, how: str) -> None:
    outcome: list[str] = []

    def cancel_myself(event: Event) -> None:
        handle = watch.handle
        assert handle is not None
        try:
            if how == "handle.cancel":
                handle.cancel()
            else:
                netnotify.cancel_mib_change_notify2(handle)
        except BaseException as exc:
            outcome.append(repr(exc))
        else:
            outcome.append(f"returned after {len(watch.events)} callback(s)")

    watch = regs.watch("route", socket.AF_INET, collector=Collector(then=cancel_myself))
    add_route(ns, 1)
    add_route(ns, 2)
    wait_until(lambda: outcome, 5, "the callback to cancel its own registration (deadlock?)")
    assert outcome == ["returned after 1 callback(s)"]
    assert watch.handle is not None
    assert not watch.handle.active
    assert_no_more_callbacks(ns, watch)
    assert len(watch.events) == 1


def test_handle_is_a_context_manager(ns: NetNS, lan: Lan) -> None:
    watch = Collector()
    with netnotify.notify_route_change2(socket.AF_INET, watch) as handle:
        assert active(handle)
        prefix = add_route(ns, 1)
        watch.wait_for(Match(ADD, destination_prefix=prefix))
    assert not active(handle)
    assert_no_more_callbacks(ns, watch)


def test_dropped_handle_keeps_the_registration(ns: NetNS, lan: Lan) -> None:
    watch = Collector()
    netnotify.notify_route_change2(socket.AF_INET, watch)  # the handle is dropped at once
    gc.collect()
    prefix = add_route(ns, 1)
    watch.wait_for(Match(ADD, destination_prefix=prefix))
    # The registration lives on until exit; this namespace goes away with the test, so it stays quiet.


class CallbackError(Exception):
    pass


def test_raising_callback_is_reported_and_deliveries_go_on(
    ns: NetNS, regs: Registrations, lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    reported: list[BaseException | None] = []

    def unraisable(args: Any) -> None:
        with lock:
            reported.append(args.exc_value)

    monkeypatch.setattr(sys, "unraisablehook", unraisable)

    def fail(event: Event) -> None:
        raise CallbackError(str(event.row.destination_prefix))

    watch = regs.watch("route", socket.AF_INET, collector=Collector(then=fail))
    first, second = add_route(ns, 1), add_route(ns, 2)
    watch.wait_for(Match(ADD, destination_prefix=first))
    watch.wait_for(Match(ADD, destination_prefix=second))
    wait_until(lambda: len(reported) >= 2, 5, "two reports through sys.unraisablehook")
    assert watch.handle is not None
    watch.handle.cancel()  # before monkeypatch puts pytest's hook back
    with lock:
        assert all(isinstance(exc, CallbackError) for exc in reported), reported
        assert {str(exc) for exc in reported} == {str(first), str(second)}
