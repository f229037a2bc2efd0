"""The Windows backend (iphlpapi): tables, rows, conversions, registrations, callbacks, missing calls.

Runs on Windows only: on a real Windows runner, and under Wine with a real Windows CPython (.ci/wine/run).
Windows cannot run `ip`, so nothing here changes the network: under Wine the Linux side made a small topology
before Wine started and describes it in the JSON file named by NETNOTIFY_WINE_TOPOLOGY; the topology tests
compare the tables with it (they skip on real Windows, which has no such file).

Wine 8 implements only part of iphlpapi (shared/windows-on-wine.md): GetUnicastIpAddressTable is real,
GetIpForwardTable2 real for IPv4 only, GetIpInterfaceTable returns ERROR_NOT_SUPPORTED, several calls are not
exported at all, and no change is ever called back (NotifyUnicastIpAddressChange calls its initial
notification synchronously, on the registering thread). Every expectation of real Windows that Wine cannot
meet is a strict expected failure under Wine only (NETNOTIFY_UNDER_WINE=1): on real Windows it must pass,
and a Wine that learns the call makes the test say so.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nettest import INITIAL, SETTLE, UNDER_WINE, WINDOWS, Collector, Registrations, without_scope

import netnotify

pytestmark = pytest.mark.windows

TOPOLOGY_ENV = "NETNOTIFY_WINE_TOPOLOGY"
EXTENSION_ENV = "NETNOTIFY_WINE_EXTENSION"
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressKey = tuple[Address, int, int]  # address (no scope), interface index, prefix length
RouteKey = tuple[Network, Address, int, int]  # destination, next hop (no scope), interface index, metric

INITIAL_TIMEOUT = 3.0  # seconds; the thread pool calls back in milliseconds (Wine never: keep the wait short)
WINE_NEVER_CALLS_BACK = "Wine 8 never calls back on changes (its Notify* are stubs, no initial notification)"
WINE_SYNCHRONOUS = (
    "Wine 8 calls the initial notification synchronously, on the registering thread, before "
    "NotifyUnicastIpAddressChange returns"
)
WINE_NO_INTERFACE_TABLE = "Wine 8's GetIpInterfaceTable returns ERROR_NOT_SUPPORTED (50)"
WINE_NO_IPV6_ROUTES = "Wine 8's GetIpForwardTable2 returns no IPv6 routes"
WINE_NOT_EXPORTED = "Wine 8's iphlpapi does not export {}: NotSupportedError (127)"


def on_wine(reason: str, raises: type[BaseException] | None = None) -> pytest.MarkDecorator:
    """Expected to fail under Wine (strictly: a pass is reported), expected to pass on real Windows."""
    return pytest.mark.xfail(UNDER_WINE, reason=reason, raises=raises, strict=True)


def noop(*args: object) -> None:
    pass


# ---------------------------------------------------------------- the build under test


def test_the_extension_is_the_build_under_test() -> None:
    expected = os.environ.get(EXTENSION_ENV)
    path = Path(netnotify._netnotify.__file__)
    if expected is not None:
        assert path.name == expected
    assert path.suffix == ".pyd"
    others = [p.name for p in path.parent.glob("_netnotify*") if p.suffix in (".pyd", ".so") and p != path]
    assert not others, f"more than one extension beside {path}: {others}"


def test_native_values_of_the_families() -> None:
    assert (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6) == (0, 2, 23)
    row = netnotify.MibIpInterfaceRow(family=23)
    assert row.family is socket.AF_INET6


# ---------------------------------------------------------------- tables, on any Windows


def test_address_table_rows() -> None:
    rows = netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC)
    assert rows, "no unicast address at all"
    addresses = {row.address for row in rows}
    assert {ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")} <= addresses
    for row in rows:
        assert isinstance(row, netnotify.MibUnicastIpAddressRow)
        assert isinstance(row.address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        assert isinstance(row.dad_state, netnotify.NlDadState)
        assert isinstance(row.prefix_origin, (netnotify.NlPrefixOrigin, int))
        assert isinstance(row.interface_luid, int)
        assert row.interface_luid != 0
        assert row.interface_index != 0
        assert 0 <= row.on_link_prefix_length <= row.address.max_prefixlen
    for version, family in FAMILIES.items():
        part = netnotify.get_unicast_ip_address_table(family)
        assert {row.address for row in part} == {
            row.address for row in rows if row.address.version == version
        }


def check_route_rows(rows: list[netnotify.MibIpForwardRow2], version: int) -> None:
    assert rows, f"no IPv{version} route at all"
    for row in rows:
        assert isinstance(row, netnotify.MibIpForwardRow2)
        assert row.destination_prefix.version == version
        assert row.next_hop.version == version
        assert isinstance(row.destination_prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network))
        assert isinstance(row.protocol, (netnotify.NlRouteProtocol, int))
        assert isinstance(row.origin, (netnotify.NlRouteOrigin, int))
        assert row.interface_index != 0


def test_ipv4_route_table_rows() -> None:
    check_route_rows(netnotify.get_ip_forward_table2(socket.AF_INET), 4)


@on_wine(WINE_NO_IPV6_ROUTES, raises=AssertionError)
def test_ipv6_route_table_rows() -> None:
    check_route_rows(netnotify.get_ip_forward_table2(socket.AF_INET6), 6)


def test_route_table_of_both_families_is_the_union() -> None:
    rows = netnotify.get_ip_forward_table2(socket.AF_UNSPEC)
    both = netnotify.get_ip_forward_table2(socket.AF_INET) + netnotify.get_ip_forward_table2(socket.AF_INET6)
    assert {(row.destination_prefix, row.next_hop, row.interface_index) for row in rows} == {
        (row.destination_prefix, row.next_hop, row.interface_index) for row in both
    }


@on_wine(WINE_NO_INTERFACE_TABLE, raises=netnotify.NotSupportedError)
def test_interface_table_rows() -> None:
    rows = netnotify.get_ip_interface_table(socket.AF_UNSPEC)
    assert {row.family for row in rows} == {socket.AF_INET, socket.AF_INET6}
    for row in rows:
        assert isinstance(row, netnotify.MibIpInterfaceRow)
        assert isinstance(row.family, socket.AddressFamily)
        assert row.interface_luid == netnotify.convert_interface_index_to_luid(row.interface_index)
        assert len(row.zone_indices) == 16
    loopback = next(
        row for row in netnotify.get_unicast_ip_address_table(socket.AF_INET) if row.address.is_loopback
    )
    assert (socket.AF_INET, loopback.interface_index) in {(row.family, row.interface_index) for row in rows}


# ---------------------------------------------------------------- entries


def loopback_row() -> netnotify.MibUnicastIpAddressRow:
    rows = netnotify.get_unicast_ip_address_table(socket.AF_INET)
    return next(row for row in rows if row.address == ipaddress.IPv4Address("127.0.0.1"))


def test_address_entry_completes_a_key_row() -> None:
    for row in netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC):
        key = netnotify.MibUnicastIpAddressRow(address=row.address, interface_index=row.interface_index)
        entry = netnotify.get_unicast_ip_address_entry(key)
        assert (entry.address, entry.interface_index, entry.interface_luid) == (
            row.address,
            row.interface_index,
            row.interface_luid,
        )
        assert entry.on_link_prefix_length == row.on_link_prefix_length


def test_absent_address_entry_raises_not_found() -> None:
    key = netnotify.MibUnicastIpAddressRow(
        address=ipaddress.IPv4Address("192.0.2.213"), interface_index=loopback_row().interface_index
    )
    with pytest.raises(netnotify.NotFoundError) as caught:
        netnotify.get_unicast_ip_address_entry(key)
    assert caught.value.winerror in (1168, 2)


@on_wine(WINE_NOT_EXPORTED.format("GetIpInterfaceEntry"), raises=netnotify.NotSupportedError)
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["AF_INET", "AF_INET6"])
def test_interface_entry_completes_a_key_row(family: socket.AddressFamily) -> None:
    index = loopback_row().interface_index
    entry = netnotify.get_ip_interface_entry(
        netnotify.MibIpInterfaceRow(family=family, interface_index=index)
    )
    assert entry.family is family
    assert entry.interface_index == index
    assert entry.interface_luid == netnotify.convert_interface_index_to_luid(index)


@on_wine(WINE_NOT_EXPORTED.format("GetIpForwardEntry2"), raises=netnotify.NotSupportedError)
def test_route_entry_completes_a_key_row() -> None:
    row = netnotify.get_ip_forward_table2(socket.AF_INET)[0]
    key = netnotify.MibIpForwardRow2(
        destination_prefix=row.destination_prefix, next_hop=row.next_hop, interface_index=row.interface_index
    )
    entry = netnotify.get_ip_forward_entry2(key)
    assert (entry.destination_prefix, entry.next_hop, entry.interface_index) == (
        row.destination_prefix,
        row.next_hop,
        row.interface_index,
    )
    assert entry.interface_luid == row.interface_luid


# ---------------------------------------------------------------- conversions


def test_conversions_round_trip_for_every_interface_with_an_address() -> None:
    interfaces = {
        row.interface_index: row.interface_luid for row in netnotify.get_unicast_ip_address_table(0)
    }
    for index, luid in interfaces.items():
        assert netnotify.convert_interface_index_to_luid(index) == luid
        assert netnotify.convert_interface_luid_to_index(luid) == index
        name = netnotify.convert_interface_luid_to_name(luid)
        assert isinstance(name, str)
        assert name
        assert netnotify.convert_interface_name_to_luid(name) == luid


def test_conversions_of_absent_interfaces_raise_not_found() -> None:
    known = {row.interface_index for row in netnotify.get_unicast_ip_address_table(0)}
    absent = max(known) + 4242
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_index_to_luid(absent)
    luid = netnotify.convert_interface_index_to_luid(max(known))
    absent_luid = (luid & ~(0xFFFFFF << 24)) | ((absent & 0xFFFFFF) << 24)  # same type, absent NetLuidIndex
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_luid_to_index(absent_luid)
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_name_to_luid("no such interface")


# ---------------------------------------------------------------- what Wine does not export


MISSING_UNDER_WINE: dict[str, Callable[[], object]] = {
    "GetIpInterfaceEntry": lambda: netnotify.get_ip_interface_entry(
        netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_index=loopback_row().interface_index)
    ),
    "GetIpForwardEntry2": lambda: netnotify.get_ip_forward_entry2(
        netnotify.MibIpForwardRow2(
            destination_prefix=ipaddress.IPv4Network("127.0.0.0/8"),
            interface_index=loopback_row().interface_index,
        )
    ),
    "GetTeredoPort": netnotify.get_teredo_port,
    "NotifyStableUnicastIpAddressTable": lambda: netnotify.notify_stable_unicast_ip_address_table(
        socket.AF_UNSPEC, noop
    ),
    "NotifyTeredoPortChange": lambda: netnotify.notify_teredo_port_change(noop),
}


@pytest.mark.skipif(WINDOWS and not UNDER_WINE, reason="checks the calls Wine 8 lacks; Windows has them all")
@pytest.mark.parametrize("call", MISSING_UNDER_WINE)
def test_call_that_wine_lacks_raises_not_supported(call: str) -> None:
    with pytest.raises(netnotify.NotSupportedError) as caught:
        MISSING_UNDER_WINE[call]()
    assert caught.value.winerror == 127  # ERROR_PROC_NOT_FOUND
    assert call in str(caught.value)
    assert isinstance(caught.value, netnotify.NetioError)
    assert netnotify.get_unicast_ip_address_table(socket.AF_INET)  # and the process goes on


@on_wine(WINE_NOT_EXPORTED.format("NotifyStableUnicastIpAddressTable"), raises=netnotify.NotSupportedError)
def test_stable_unicast_table() -> None:
    result = netnotify.notify_stable_unicast_ip_address_table(socket.AF_UNSPEC, noop)
    if isinstance(result, netnotify.NotificationHandle):
        result.cancel()
    else:
        assert {row.address for row in result} >= {ipaddress.IPv4Address("127.0.0.1")}


@on_wine(WINE_NOT_EXPORTED.format("NotifyTeredoPortChange"), raises=netnotify.NotSupportedError)
def test_teredo_registration_and_cancel() -> None:
    with netnotify.notify_teredo_port_change(noop) as handle:
        assert handle.active
    assert not handle.active


# ---------------------------------------------------------------- the topology the Linux side made (Wine)


@pytest.fixture
def topology() -> dict[str, Any]:
    path = os.environ.get(TOPOLOGY_ENV)
    if path is None:
        if UNDER_WINE:
            pytest.fail(f"{TOPOLOGY_ENV} is not set: .ci/wine/run sets it", pytrace=False)
        pytest.skip(f"no {TOPOLOGY_ENV}: only .ci/wine/run makes a known topology (Windows cannot run ip)")
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def topology_addresses(topology: dict[str, Any]) -> set[AddressKey]:
    return {
        (ipaddress.ip_address(info["local"]), link["ifindex"], info["prefixlen"])
        for link in topology["addr"]
        for info in link["addr_info"]
    }


def topology_routes(topology: dict[str, Any], version: int) -> set[RouteKey]:
    indexes = {link["ifname"]: link["ifindex"] for link in topology["addr"]}
    everything = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    keys: set[RouteKey] = set()
    for route in topology["route" if version == 4 else "route6"]:
        prefix = everything if route["dst"] == "default" else ipaddress.ip_network(route["dst"])
        gateway = ipaddress.ip_address(route.get("gateway", str(everything.network_address)))
        keys.add((prefix, gateway, indexes[route["dev"]], route.get("metric", 0)))
    return keys


def route_key(row: netnotify.MibIpForwardRow2) -> RouteKey:
    return (row.destination_prefix, without_scope(row.next_hop), row.interface_index, row.metric)


def test_topology_addresses_are_in_the_table(topology: dict[str, Any]) -> None:
    expected = topology_addresses(topology)
    assert any(address.version == 4 for address, _, _ in expected)
    assert any(address.version == 6 for address, _, _ in expected)
    rows = netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC)
    got = [(without_scope(row.address), row.interface_index, row.on_link_prefix_length) for row in rows]
    assert len(got) == len(set(got)), "an address reported twice"
    assert set(got) == expected
    for version, family in FAMILIES.items():
        part = netnotify.get_unicast_ip_address_table(family)
        assert {(row.address, row.interface_index) for row in part} == {
            (address, index) for address, index, _ in expected if address.version == version
        }


def test_topology_interfaces_convert(topology: dict[str, Any]) -> None:
    for link in topology["addr"]:
        luid = netnotify.convert_interface_index_to_luid(link["ifindex"])
        assert netnotify.convert_interface_luid_to_index(luid) == link["ifindex"]
        assert (
            netnotify.convert_interface_name_to_luid(netnotify.convert_interface_luid_to_name(luid)) == luid
        )
    rows = netnotify.get_unicast_ip_address_table(socket.AF_UNSPEC)
    assert all(
        row.interface_luid == netnotify.convert_interface_index_to_luid(row.interface_index) for row in rows
    )


def test_topology_ipv4_routes_are_the_table(topology: dict[str, Any]) -> None:
    expected = topology_routes(topology, 4)
    assert expected, "the topology has no IPv4 route"
    got = [route_key(row) for row in netnotify.get_ip_forward_table2(socket.AF_INET)]
    assert len(got) == len(set(got)), "a route reported twice"
    assert set(got) == expected


@on_wine(WINE_NO_IPV6_ROUTES, raises=AssertionError)
def test_topology_ipv6_routes_are_in_the_table(topology: dict[str, Any]) -> None:
    expected = topology_routes(topology, 6)
    assert expected, "the topology has no IPv6 route"
    got = {route_key(row) for row in netnotify.get_ip_forward_table2(socket.AF_INET6)}
    assert expected <= got  # Windows adds its own (multicast, local) routes


@on_wine(WINE_NO_INTERFACE_TABLE, raises=netnotify.NotSupportedError)
def test_topology_interfaces_are_in_the_interface_table(topology: dict[str, Any]) -> None:
    rows = netnotify.get_ip_interface_table(socket.AF_UNSPEC)
    expected = {(family, link["ifindex"]) for link in topology["addr"] for family in FAMILIES.values()}
    assert {(row.family, row.interface_index) for row in rows} >= expected


# ---------------------------------------------------------------- registrations and callbacks


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("interface", marks=on_wine(WINE_NEVER_CALLS_BACK, raises=AssertionError)),
        "address",
        pytest.param("route", marks=on_wine(WINE_NEVER_CALLS_BACK, raises=AssertionError)),
    ],
)
def test_initial_notification_arrives_once(regs: Registrations, kind: str) -> None:
    context = object()
    watch = regs.watch(kind, initial_notification=True, caller_context=context)
    first = watch.wait_for(lambda event: event.type == INITIAL, timeout=INITIAL_TIMEOUT)
    assert first.row is None
    assert first.context is context
    assert isinstance(first.type, netnotify.MibNotificationType)
    time.sleep(SETTLE)
    assert [event.type for event in watch.events].count(INITIAL) == 1, watch.describe()
    assert watch.events[0].type == INITIAL, watch.describe()


@on_wine(WINE_SYNCHRONOUS, raises=AssertionError)
def test_callback_runs_on_another_thread(regs: Registrations) -> None:
    watch = regs.watch("address", initial_notification=True)
    first = watch.wait_for(lambda event: event.type == INITIAL)
    assert first.thread != threading.get_ident(), "the callback ran on the registering thread"


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _THREAD_START = ctypes.WINFUNCTYPE(wintypes.DWORD, wintypes.LPVOID)
    _kernel32.CreateThread.restype = wintypes.HANDLE
    _kernel32.CreateThread.argtypes = [
        wintypes.LPVOID,
        ctypes.c_size_t,
        _THREAD_START,
        wintypes.LPVOID,
        wintypes.DWORD,
        wintypes.LPDWORD,
    ]
    _kernel32.WaitForSingleObject.restype = wintypes.DWORD
    _kernel32.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
    _kernel32.CloseHandle.argtypes = [wintypes.HANDLE]

    def run_on_native_thread(fn: Callable[[], None], timeout: float) -> None:
        """Runs fn on a thread made by CreateThread, unknown to `threading`, and waits for it."""

        def start(parameter: int | None) -> int:
            fn()
            return 0

        entry = _THREAD_START(start)  # kept alive until the thread has ended
        handle = _kernel32.CreateThread(None, 0, entry, None, 0, None)
        if not handle:
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            assert _kernel32.WaitForSingleObject(handle, int(timeout * 1000)) == 0, "the native thread hung"
        finally:
            _kernel32.CloseHandle(handle)

else:

    def run_on_native_thread(fn: Callable[[], None], timeout: float) -> None:
        raise RuntimeError("CreateThread is Windows only")


def test_callback_of_a_registration_made_on_a_native_thread() -> None:
    """The callback takes the GIL on OS threads Python did not make (under Wine: the CreateThread one)."""
    watch = Collector()
    handles: list[netnotify.NotificationHandle] = []
    registered_on: list[int] = []

    def register() -> None:
        registered_on.append(threading.get_native_id())
        handles.append(netnotify.notify_unicast_ip_address_change(socket.AF_UNSPEC, watch, "native", True))

    run_on_native_thread(register, timeout=30)
    try:
        assert registered_on
        assert registered_on[0] != threading.get_native_id()
        first = watch.wait_for(lambda event: event.type == INITIAL)
        assert first.context == "native"
        assert first.thread != threading.get_ident()
    finally:
        for handle in handles:
            handle.cancel()


def test_callback_can_wait_for_another_python_thread(regs: Registrations) -> None:
    """Inside the callback, another Python thread gets the GIL: the callback holds it the Python way."""
    entered = threading.Event()
    answered = threading.Event()
    outcome: list[bool] = []

    def helper() -> None:
        if entered.wait(30):
            answered.set()

    def wait_for_helper(event: Any) -> None:
        entered.set()
        outcome.append(answered.wait(10))

    thread = threading.Thread(target=helper, daemon=True)
    thread.start()
    watch = regs.watch("address", collector=Collector(then=wait_for_helper), initial_notification=True)
    watch.wait_for(lambda event: event.type == INITIAL)
    deadline = time.monotonic() + 15
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outcome == [True], "the helper thread never ran while the callback waited"
    thread.join(5)


def test_registrations_with_initial_notification_from_many_threads() -> None:
    collectors = [Collector() for _ in range(8)]
    handles: list[netnotify.NotificationHandle] = []
    lock = threading.Lock()

    def register(collector: Collector) -> None:
        handle = netnotify.notify_unicast_ip_address_change(socket.AF_UNSPEC, collector, None, True)
        with lock:
            handles.append(handle)

    threads = [threading.Thread(target=register, args=(collector,)) for collector in collectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert not any(thread.is_alive() for thread in threads), "a registration hung"
        for collector in collectors:
            collector.wait_for(lambda event: event.type == INITIAL)
    finally:
        for handle in handles:
            handle.cancel()


class CallbackError(Exception):
    pass


def test_raising_callback_is_reported_through_unraisablehook(
    regs: Registrations, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[BaseException | None] = []
    lock = threading.Lock()

    def unraisable(args: Any) -> None:
        with lock:
            reported.append(args.exc_value)

    monkeypatch.setattr(sys, "unraisablehook", unraisable)

    def fail(event: Any) -> None:
        raise CallbackError("from the callback")

    watch = regs.watch("address", collector=Collector(then=fail), initial_notification=True)
    watch.wait_for(lambda event: event.type == INITIAL)
    deadline = time.monotonic() + 5
    while not reported and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watch.handle is not None
    assert watch.handle.active
    watch.handle.cancel()  # before monkeypatch puts pytest's hook back
    with lock:
        assert len(reported) == 1, reported
        assert isinstance(reported[0], CallbackError)


# ---------------------------------------------------------------- in a subprocess (a crash fails one test)


def run_python_code(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"still ran after {timeout} s: {exc.stdout!r} {exc.stderr!r}") from None


def report(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"


def test_callback_cancels_its_registration_before_notify_returned() -> None:
    """The initial notification may come before notify_* returns; cancelling from it must be safe.

    (A stable-table callback does so itself: its registration ends with its one callback.) The callback
    finds its handle with gc, the only way to have it before notify_* returned.
    """
    done = run_python_code(
        """
        import gc, socket, threading, time, netnotify
        outcome = []
        def callback(context, row, kind):
            for handle in [o for o in gc.get_objects() if isinstance(o, netnotify.NotificationHandle)]:
                if handle.active:
                    handle.cancel()
                    outcome.append("cancelled")
        handle = netnotify.notify_unicast_ip_address_change(socket.AF_UNSPEC, callback, None, True)
        deadline = time.monotonic() + 10
        while not outcome and time.monotonic() < deadline:
            time.sleep(0.02)
        print(outcome, "active" if handle.active else "inactive")
        handle.cancel()
        """
    )
    assert done.returncode == 0, report(done)
    assert done.stdout.split() == ["['cancelled']", "inactive"], report(done)


def test_exit_with_live_registrations() -> None:
    done = run_python_code(
        """
        import atexit, socket

        def late_notify():
            import netnotify
            try:
                netnotify.notify_route_change2(socket.AF_UNSPEC, lambda context, row, kind: None)
            except Exception as exc:
                print(f"late-notify: {type(exc).__name__}")
            else:
                print("late-notify: registered")

        atexit.register(late_notify)  # before netnotify's hook, so it runs after it
        import netnotify
        for notify in (
            netnotify.notify_ip_interface_change,
            netnotify.notify_unicast_ip_address_change,
            netnotify.notify_route_change2,
        ):
            notify(socket.AF_UNSPEC, lambda context, row, kind: None, None, True)  # handles dropped
        print("ready")
        """
    )
    assert done.returncode == 0, report(done)
    for trouble in ("Traceback", "Fatal Python error", "Exception ignored"):
        assert trouble not in done.stderr, report(done)
    assert done.stdout.splitlines() == ["ready", "late-notify: RuntimeError"], report(done)
