"""NotificationHandle: registering and cancelling every kind of change notification, and cancel's errors.

Portable: no test here changes the network, so they run on Linux (in a private namespace), on Windows and
under Wine (whose registrations come back with a NULL native handle: they must still register and cancel).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from nettest import NOTIFY, BackgroundCall, Collector, NetNS, Registrations

import netnotify

FAMILIES = [socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6]
FAMILY_IDS = ["AF_UNSPEC", "AF_INET", "AF_INET6"]


def active(handle: netnotify.NotificationHandle) -> bool:
    return handle.active  # read afresh each time (mypy would narrow `handle.active` after an assert)


@pytest.mark.parametrize("initial", [False, True], ids=["plain", "initial_notification"])
@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("kind", NOTIFY)
def test_register_then_cancel(isolated: NetNS | None, kind: str, family: int, initial: bool) -> None:
    collector = Collector()
    handle = NOTIFY[kind](family, collector, None, initial)
    assert isinstance(handle, netnotify.NotificationHandle)
    assert active(handle)
    netnotify.cancel_mib_change_notify2(handle)
    assert not active(handle)
    seen = len(collector.events)
    assert seen <= 1, collector.describe()  # at most the initial notification, which may come before return
    if not initial:
        assert seen == 0, collector.describe()


@pytest.mark.parametrize("kind", NOTIFY)
def test_keyword_arguments(isolated: NetNS | None, kind: str) -> None:
    with NOTIFY[kind](
        family=socket.AF_INET, callback=Collector(), caller_context="context", initial_notification=False
    ) as handle:
        assert active(handle)
    assert not active(handle)


def test_second_cancel_raises_invalid_handle(regs: Registrations) -> None:
    handle = regs.watch("route").handle
    assert handle is not None
    netnotify.cancel_mib_change_notify2(handle)
    with pytest.raises(netnotify.InvalidHandleError) as caught:
        netnotify.cancel_mib_change_notify2(handle)
    assert caught.value.winerror == 6
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, netnotify.NetioError)


def test_handle_cancel_is_idempotent(regs: Registrations) -> None:
    handle = regs.watch("address").handle
    assert handle is not None
    assert active(handle)
    handle.cancel()
    assert not active(handle)
    handle.cancel()
    assert not active(handle)
    with pytest.raises(netnotify.InvalidHandleError):
        netnotify.cancel_mib_change_notify2(handle)


def test_handle_is_a_context_manager_that_cancels(isolated: NetNS | None) -> None:
    with netnotify.notify_ip_interface_change(socket.AF_UNSPEC, Collector()) as handle:
        assert active(handle)
    assert not active(handle)
    handle.cancel()  # idempotent after the with block
    with pytest.raises(netnotify.InvalidHandleError):
        netnotify.cancel_mib_change_notify2(handle)


def test_cancel_from_another_thread(regs: Registrations) -> None:
    handle = regs.watch("interface").handle
    assert handle is not None
    cancel = BackgroundCall(lambda: netnotify.cancel_mib_change_notify2(handle))
    cancel.thread.join(10)
    assert not cancel.thread.is_alive(), "cancel from another thread did not return"
    assert cancel.error is None
    assert not active(handle)


def test_many_registrations_at_once_then_cancelled(isolated: NetNS | None) -> None:
    handles = [NOTIFY[kind](family, Collector()) for kind in NOTIFY for family in FAMILIES for _ in range(10)]
    assert all(active(handle) for handle in handles)
    for handle in reversed(handles):
        handle.cancel()
    assert not any(active(handle) for handle in handles)


def test_registrations_from_several_threads(isolated: NetNS | None) -> None:
    """Registering and cancelling concurrently (the GIL is released around the native calls)."""
    errors: list[BaseException] = []

    def churn(kind: str) -> None:
        try:
            for _ in range(20):
                with NOTIFY[kind](socket.AF_UNSPEC, Collector()):
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(kind,)) for kind in NOTIFY for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a registration or cancel hung"
    assert not errors, errors


def test_cancel_argument_errors() -> None:
    cancel: Any = netnotify.cancel_mib_change_notify2  # called with wrong types on purpose
    with pytest.raises(netnotify.InvalidParameterError) as caught:
        cancel(None)
    assert caught.value.winerror == 87
    for wrong in (0, 12345, object(), "handle"):
        with pytest.raises(TypeError):
            cancel(wrong)
