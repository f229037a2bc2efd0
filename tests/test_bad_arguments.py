"""The bad-argument matrix: every public call with wrong types and values raises its documented exception.

One row of the matrix is a `Case`: a call made with one bad argument, and the exception type docs/api.md and
docs/watch.md promise for it (exactly that type), or None when the call must succeed (the idempotent forms).
The matrix complements tests/test_api_args.py, tests/test_watch.py, tests/test_handles.py and
tests/test_rows.py: the (call, value) pairs they check already are not repeated here.

Every case runs on its own (parametrized, so the matrix is countable: `pytest --collect-only -q
tests/test_bad_arguments.py`), and the whole matrix runs again twice in one process without a subprocess
(a crash or a corrupted state would end the run there). Portable: the outcomes that depend on what the OS
says (entries and names that do not exist) are Linux's, marked as such; argument checking is the same code
on every platform.
"""

from __future__ import annotations

import asyncio
import gc
import math
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from nettest import NetNS

import netnotify

api: Any = netnotify  # every call below passes wrong types on purpose
low: Any = netnotify._netnotify


class BoolRefused(Exception):
    """What BadBool's truth test raises: a flag taken by its truth value passes this on."""


class BadBool:
    def __bool__(self) -> bool:
        raise BoolRefused("no truth value")


class HasIndex:
    """Not an int, though it converts to one (__index__): no family, LUID or member takes it."""

    def __index__(self) -> int:
        return 2


def noop(*args: object) -> None:
    pass


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], object]
    error: type[BaseException] | None  # None: the call must succeed
    os: bool = False  # registers or asks the OS: runs in the test's private namespace on Linux
    linux: bool = False  # the outcome is what Linux says (another OS may say it differently)


def attempt(case: Case) -> BaseException | None:
    """Runs a case; what it raised (None if nothing). A registration or watcher made is undone."""
    try:
        result = case.call()
    except Exception as error:
        return error
    if isinstance(result, netnotify.NotificationHandle | netnotify.Watcher):
        result.cancel() if isinstance(result, netnotify.NotificationHandle) else result.close()
    return None


def outcome_problem(case: Case, raised: BaseException | None) -> str | None:
    """None when the case behaved as documented, else what went wrong."""
    if case.error is None:
        return None if raised is None else f"{case.id}: raised {raised!r}, expected success"
    if raised is None:
        return f"{case.id}: returned, expected {case.error.__name__}"
    if type(raised) is not case.error:
        return f"{case.id}: raised {type(raised).__name__}: {raised}, expected {case.error.__name__}"
    return None


# ---------------------------------------------------------------- values

TYPE_BAD = {"None": None, "float": 1.5, "str": "1"}  # for every int member
NOT_FAMILIES_BY_TYPE = {
    "True": True,
    "False": False,
    "float 1.5": 1.5,
    "nan": math.nan,
    "object": object(),
    "list": [2],
    "complex": 1j,
    "bytearray": bytearray(b"\x02"),
    "Decimal": Decimal(2),
    "__index__": HasIndex(),
}
NOT_FAMILIES_BY_VALUE = {
    "12345": 12345,
    "2**31": 2**31,
    "-2**31-1": -(2**31) - 1,
    "2**64": 2**64,
    "2**1000": 2**1000,
    "-2**1000": -(2**1000),
}
NOT_CALLABLE = {"bytes": b"callback", "list": [noop], "tuple": (noop,), "float": 1.5}


# ---------------------------------------------------------------- the low-level calls

FAMILY_CALLS: dict[str, Callable[[object], object]] = {
    "notify_ip_interface_change": lambda f: api.notify_ip_interface_change(f, noop),
    "notify_unicast_ip_address_change": lambda f: api.notify_unicast_ip_address_change(f, noop),
    "notify_route_change2": lambda f: api.notify_route_change2(f, noop),
    "notify_stable_unicast_ip_address_table": lambda f: api.notify_stable_unicast_ip_address_table(f, noop),
    "get_ip_interface_table": lambda f: api.get_ip_interface_table(f),
    "get_unicast_ip_address_table": lambda f: api.get_unicast_ip_address_table(f),
    "get_ip_forward_table2": lambda f: api.get_ip_forward_table2(f),
}
NOTIFY_CALLS: dict[str, Callable[..., object]] = {
    "notify_ip_interface_change": api.notify_ip_interface_change,
    "notify_unicast_ip_address_change": api.notify_unicast_ip_address_change,
    "notify_route_change2": api.notify_route_change2,
}
ENTRY_CALLS: dict[str, tuple[Callable[..., object], type]] = {
    "get_ip_interface_entry": (api.get_ip_interface_entry, netnotify.MibIpInterfaceRow),
    "get_unicast_ip_address_entry": (api.get_unicast_ip_address_entry, netnotify.MibUnicastIpAddressRow),
    "get_ip_forward_entry2": (api.get_ip_forward_entry2, netnotify.MibIpForwardRow2),
}


def cancelled_handle() -> netnotify.NotificationHandle:
    handle: netnotify.NotificationHandle = api.notify_route_change2(socket.AF_UNSPEC, noop)
    handle.cancel()
    return handle


def twice_cancelled_handle() -> netnotify.NotificationHandle:
    handle = cancelled_handle()
    with pytest.raises(netnotify.InvalidHandleError):
        api.cancel_mib_change_notify2(handle)
    return handle


def any_handle(handle: netnotify.NotificationHandle) -> Any:
    return handle


def with_after_cancel() -> None:
    with api.notify_route_change2(socket.AF_UNSPEC, noop) as handle:
        handle.cancel()  # the with block's exit cancels again: nothing happens


def low_level_cases() -> Iterator[Case]:
    # family: a wrong type is TypeError (a bool too: watch() agrees), a wrong value InvalidParameterError
    for name, call in FAMILY_CALLS.items():
        for label, value in NOT_FAMILIES_BY_TYPE.items():
            yield Case(f"{name}-family {label}", partial(call, value), TypeError, os=True)
        for label, value in NOT_FAMILIES_BY_VALUE.items():
            yield Case(f"{name}-family {label}", partial(call, value), api.InvalidParameterError, os=True)
    # callbacks, flags and arity of the notify calls
    # (each as a function of the callback)
    by_callback: dict[str, Callable[..., object]] = {
        **{name: partial(fn, 0) for name, fn in NOTIFY_CALLS.items()},
        "notify_stable_unicast_ip_address_table": partial(api.notify_stable_unicast_ip_address_table, 0),
        "notify_teredo_port_change": api.notify_teredo_port_change,
    }
    for name, call in by_callback.items():
        for label, value in NOT_CALLABLE.items():
            yield Case(f"{name}-callback {label}", partial(call, value), TypeError, os=True)
        yield Case(f"{name}-unknown keyword", partial(call, noop, flags=1), TypeError, os=True)
    for name, fn in NOTIFY_CALLS.items():
        yield Case(f"{name}-no argument", fn, TypeError)
        yield Case(f"{name}-5 arguments", partial(fn, 0, noop, None, False, 0), TypeError, os=True)
        yield Case(
            f"{name}-initial_notification refusing bool()",
            partial(fn, 0, noop, None, BadBool()),
            BoolRefused,
            os=True,
        )
    yield Case(
        "notify_stable_unicast_ip_address_table-initial_notification (it has none)",
        lambda: api.notify_stable_unicast_ip_address_table(0, noop, None, True),
        TypeError,
    )
    yield Case(
        "notify_teredo_port_change-family first (it has none)",
        lambda: api.notify_teredo_port_change(0, noop),
        TypeError,
    )
    yield Case(
        "notify_teredo_port_change-initial_notification refusing bool()",
        lambda: api.notify_teredo_port_change(noop, None, BadBool()),
        BoolRefused,
    )
    yield Case("get_teredo_port-an argument", lambda: api.get_teredo_port(0), TypeError)

    # cancel_mib_change_notify2: None is InvalidParameterError, a cancelled handle InvalidHandleError,
    # anything else TypeError; the Pythonic forms are idempotent
    cancel = api.cancel_mib_change_notify2
    for label, value in {
        "row": netnotify.MibIpForwardRow2(),
        "handle class": netnotify.NotificationHandle,
        "float": 1.5,
        "bytes": b"handle",
        "list": [],
        "False": False,
    }.items():
        yield Case(f"cancel_mib_change_notify2-{label}", partial(cancel, value), TypeError)
    yield Case("cancel_mib_change_notify2-no argument", lambda: cancel(), TypeError)
    yield Case("cancel_mib_change_notify2-2 arguments", lambda: cancel(None, None), TypeError)
    yield Case(
        "cancel_mib_change_notify2-cancelled twice before",
        lambda: cancel(twice_cancelled_handle()),
        api.InvalidHandleError,
        os=True,
    )
    yield Case("NotificationHandle-constructed", lambda: netnotify.NotificationHandle(), TypeError)
    yield Case(
        "NotificationHandle.cancel-an argument",
        lambda: any_handle(cancelled_handle()).cancel(1),
        TypeError,
        os=True,
    )
    yield Case("NotificationHandle.cancel-again", lambda: cancelled_handle().cancel(), None, os=True)
    yield Case("NotificationHandle-with after cancel", with_after_cancel, None, os=True)
    yield Case(
        "NotificationHandle.active-assigned",
        lambda: setattr(cancelled_handle(), "active", True),
        AttributeError,
        os=True,
    )

    # get_*_entry: anything but a row of its own kind is TypeError
    for name, (call, own) in ENTRY_CALLS.items():
        for label, value in {
            "float": 1.5,
            "bytes": b"row",
            "list of row": [own()],
            "dict of row": own()._asdict(),
            "tuple": (),
        }.items():
            yield Case(f"{name}-{label}", partial(call, value), TypeError)
        yield Case(f"{name}-no argument", call, TypeError)
        yield Case(f"{name}-2 arguments", partial(call, own(), own()), TypeError)
    # ... and a row whose key says nothing the OS can look up is InvalidParameterError (Linux's word)
    yield Case(
        "get_ip_interface_entry-family 12345",
        lambda: api.get_ip_interface_entry(netnotify.MibIpInterfaceRow(family=12345, interface_index=1)),
        api.InvalidParameterError,
        os=True,
        linux=True,
    )
    yield Case(
        "get_ip_interface_entry-family AF_UNSPEC",
        lambda: api.get_ip_interface_entry(netnotify.MibIpInterfaceRow(interface_index=1)),
        api.InvalidParameterError,
        os=True,
        linux=True,
    )
    yield Case(
        "get_unicast_ip_address_entry-no address",
        lambda: api.get_unicast_ip_address_entry(netnotify.MibUnicastIpAddressRow(interface_index=1)),
        api.InvalidParameterError,
        os=True,
        linux=True,
    )
    yield Case(
        "get_ip_forward_entry2-no prefix",
        lambda: api.get_ip_forward_entry2(netnotify.MibIpForwardRow2(next_hop="192.0.2.1")),
        api.InvalidParameterError,
        os=True,
        linux=True,
    )
    yield Case(
        "get_ip_interface_entry-LUID of no interface",
        lambda: api.get_ip_interface_entry(
            netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_luid=2**64 - 1)
        ),
        api.NotFoundError,
        os=True,
        linux=True,
    )
    for name in FAMILY_CALLS:
        if name.startswith("get_"):
            call = getattr(api, name)
            yield Case(f"{name}-no argument", call, TypeError)
            yield Case(f"{name}-2 arguments", partial(call, 0, 0), TypeError)

    # ConvertInterface*: TypeError for a non-int LUID or index or a non-str name, OverflowError out of range
    luid_calls = {
        "convert_interface_luid_to_index": api.convert_interface_luid_to_index,
        "convert_interface_luid_to_name": api.convert_interface_luid_to_name,
    }
    for name, call in luid_calls.items():
        for label, value, error in [
            ("None", None, TypeError),
            ("float", 1.5, TypeError),
            ("bytes", b"1", TypeError),
            ("__index__", HasIndex(), TypeError),
            ("-2**1000", -(2**1000), OverflowError),
            ("2**1000", 2**1000, OverflowError),
            ("2**64+1", 2**64 + 1, OverflowError),
        ]:
            yield Case(f"{name}-{label}", partial(call, value), error)
        yield Case(
            f"{name}-LUID of no interface",
            partial(call, 2**64 - 1),
            api.NotFoundError,
            os=True,
            linux=True,
        )
    index_to_luid = api.convert_interface_index_to_luid
    for label, value, error in [
        ("float", 1.5, TypeError),
        ("str", "1", TypeError),
        ("__index__", HasIndex(), TypeError),
        ("-1", -1, OverflowError),
        ("2**64", 2**64, OverflowError),
        ("2**1000", 2**1000, OverflowError),
        ("-2**1000", -(2**1000), OverflowError),
    ]:
        yield Case(f"convert_interface_index_to_luid-{label}", partial(index_to_luid, value), error)
    yield Case(
        "convert_interface_index_to_luid-index of no interface",
        lambda: index_to_luid(2**32 - 1),
        api.NotFoundError,
        os=True,
        linux=True,
    )
    name_to_luid = api.convert_interface_name_to_luid
    for label, value, error in [
        ("None", None, TypeError),
        ("int", 1, TypeError),
        ("bytearray", bytearray(b"lo"), TypeError),
        ("list", ["lo"], TypeError),
        ("NUL at the end", "lo\0", api.InvalidParameterError),
        ("NUL only", "\0", api.InvalidParameterError),
    ]:
        yield Case(f"convert_interface_name_to_luid-{label}", partial(name_to_luid, value), error)
    for label, value in [
        ("empty", ""),
        ("1000 chars", "x" * 1000),
        ("lone surrogate", "\udcff"),
        ("emoji", "😀"),
    ]:
        yield Case(
            f"convert_interface_name_to_luid-{label}",
            partial(name_to_luid, value),
            api.NotFoundError,
            os=True,
            linux=True,
        )
    for name in (*luid_calls, "convert_interface_index_to_luid", "convert_interface_name_to_luid"):
        call = getattr(api, name)
        yield Case(f"{name}-no argument", call, TypeError)
        yield Case(f"{name}-2 arguments", partial(call, 1, 1), TypeError)

    # the private helpers of _netnotify
    yield Case("_report_exception-no exception", lambda: low._report_exception(1, None), TypeError)
    yield Case("_report_exception-no argument", lambda: low._report_exception(), TypeError)
    yield Case("_shutdown-an argument", lambda: low._shutdown(1), TypeError)


# ---------------------------------------------------------------- rows

INT_RANGES = {"family": (0, 2**16 - 1), "u8": (0, 255), "u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1)}
INT_RANGES |= {"i64": (-(2**63), 2**63 - 1), "enum": (-(2**31), 2**31 - 1)}
# The members of each row by their C type (csrc/nn_rows.c); every member is in exactly one list.
ROW_MEMBERS: dict[Any, dict[str, list[str]]] = {
    netnotify.MibIpInterfaceRow: {
        "family": ["family"],
        "u64": ["interface_luid", "interface_identifier"],
        "u32": [
            "interface_index",
            "max_reassembly_size",
            "min_router_advertisement_interval",
            "max_router_advertisement_interval",
            "dad_transmits",
            "base_reachable_time",
            "retransmit_time",
            "path_mtu_discovery_timeout",
            "link_local_address_timeout",
            "site_prefix_length",
            "metric",
            "nl_mtu",
            "reachable_time",
        ],
        "u8": ["transmit_offload", "receive_offload"],
        "enum": ["router_discovery_behavior", "link_local_address_behavior"],
        "bool": [
            "advertising_enabled",
            "forwarding_enabled",
            "weak_host_send",
            "weak_host_receive",
            "use_automatic_metric",
            "use_neighbor_unreachability_detection",
            "managed_address_configuration_supported",
            "other_stateful_configuration_supported",
            "advertise_default_route",
            "connected",
            "supports_wake_up_patterns",
            "supports_neighbor_discovery",
            "supports_router_discovery",
            "disable_default_routes",
        ],
        "zones": ["zone_indices"],
    },
    netnotify.MibUnicastIpAddressRow: {
        "address": ["address"],
        "u64": ["interface_luid"],
        "u32": ["interface_index", "valid_lifetime", "preferred_lifetime", "scope_id"],
        "u8": ["on_link_prefix_length"],
        "enum": ["prefix_origin", "suffix_origin", "dad_state"],
        "i64": ["creation_time_stamp"],
        "bool": ["skip_as_source"],
    },
    netnotify.MibIpForwardRow2: {
        "u64": ["interface_luid"],
        "u32": ["interface_index", "valid_lifetime", "preferred_lifetime", "metric", "age"],
        "prefix": ["destination_prefix"],
        "address": ["next_hop"],
        "u8": ["site_prefix_length"],
        "enum": ["protocol", "origin"],
        "bool": ["loopback", "autoconfigure_address", "publish", "immortal"],
    },
}
ADDRESS_BAD: list[tuple[str, object, type[BaseException]]] = [
    ("float", 1.5, TypeError),
    ("object", object(), TypeError),
    ("a network", netnotify.MibIpForwardRow2(destination_prefix="10.0.0.0/8").destination_prefix, TypeError),
    ("no address", "nope", ValueError),
    ("-1", -1, ValueError),
    ("3 bytes", b"abc", ValueError),
    ("scope by name", "fe80::1%eth0", ValueError),
    ("scope 2**32", "fe80::1%4294967296", OverflowError),
]
PREFIX_BAD: list[tuple[str, object, type[BaseException]]] = [
    ("int", 5, TypeError),
    ("bytes", b"10.0.0.0/8", TypeError),
    ("an address", netnotify.MibUnicastIpAddressRow(address="10.0.0.1").address, TypeError),
    ("length 33", "10.0.0.0/33", ValueError),
    ("no network", "nope", ValueError),
    ("scope by name", "fe80::%eth0/64", ValueError),
]
ZONES_BAD: list[tuple[str, object, type[BaseException]]] = [
    ("int", 5, TypeError),
    ("None", None, TypeError),
    ("17 values", range(17), ValueError),
    ("str values", ["1"], TypeError),
    ("negative", [-1], OverflowError),
    ("2**32", [2**32], OverflowError),
]


def replace(row_type: Any, **changes: object) -> object:
    return row_type()._replace(**changes)


def replace_positional(row_type: Any) -> object:
    return row_type()._replace(0)


def asdict_with_argument(row_type: Any) -> object:
    return row_type()._asdict(0)


def assign_fields(row_type: Any) -> None:
    row_type()._fields = ()


def member_cases(member_type: str) -> list[tuple[str, object, type[BaseException]]]:
    """The bad values of a member of this C type, with the exception each raises."""
    if member_type == "bool":  # any object, by its truth value
        return [("refusing bool()", BadBool(), BoolRefused)]
    if member_type == "address":
        return ADDRESS_BAD
    if member_type == "prefix":
        return PREFIX_BAD
    if member_type == "zones":
        return ZONES_BAD
    low_end, high_end = INT_RANGES[member_type]
    cases: list[tuple[str, object, type[BaseException]]] = [
        (f"{label}", value, TypeError) for label, value in TYPE_BAD.items()
    ]
    cases += [
        ("below range", low_end - 1, OverflowError),
        ("above range", high_end + 1, OverflowError),
        ("2**1000", 2**1000, OverflowError),
    ]
    return cases


def row_cases() -> Iterator[Case]:
    for row_type, members in ROW_MEMBERS.items():
        name = row_type.__name__
        for member_type, names in members.items():
            for member in names:
                for label, value, error in member_cases(member_type):
                    yield Case(f"{name}-{member} {label}", partial(row_type, **{member: value}), error)
            # _replace shares the checks: one member of each type is enough to show it
            member = names[0]
            for label, value, error in member_cases(member_type):
                yield Case(
                    f"{name}._replace-{member} {label}",
                    partial(replace, row_type, **{member: value}),
                    error,
                )
        yield Case(f"{name}-positional", partial(row_type, 0), TypeError)
        yield Case(f"{name}._replace-positional", partial(replace_positional, row_type), TypeError)
        yield Case(f"{name}._replace-unknown member", partial(replace, row_type, bogus=0), TypeError)
        yield Case(f"{name}._asdict-an argument", partial(asdict_with_argument, row_type), TypeError)
        yield Case(f"{name}-member assigned", partial(assign_fields, row_type), AttributeError)
    yield Case(
        "MibUnicastIpAddressRow-unknown member",
        partial(api.MibUnicastIpAddressRow, bogus=0),
        TypeError,
    )
    yield Case("MibIpForwardRow2-unknown member", partial(api.MibIpForwardRow2, bogus=0), TypeError)


# ---------------------------------------------------------------- watch() and the Watcher


def closed_watcher() -> netnotify.Watcher:
    watcher = netnotify.watch("route")
    watcher.close()
    return watcher


def any_watcher(watcher: netnotify.Watcher) -> Any:
    return watcher


def get_from_closed_watcher(*args: Any) -> object:
    return any_watcher(closed_watcher()).get(*args)


def aget_from_closed_watcher(timeout: Any) -> object:
    return asyncio.run(closed_watcher().aget(timeout))


def get_from_callback_watcher() -> object:
    with netnotify.watch("route", callback=noop) as watcher:
        return watcher.get(0)


def watch_cases() -> Iterator[Case]:
    watch = api.watch
    for label, value, error in [
        ("float", 1.5, TypeError),
        ("object", object(), TypeError),
        ("list", ["route"], TypeError),
        ("Kind class", netnotify.Kind, TypeError),
        ("capitalized", "Route", ValueError),
        ("comma list", "interface,address", ValueError),
        ("empty", "", ValueError),
    ]:
        yield Case(f"watch-kind {label}", partial(watch, value), error, os=True)
    families = {**NOT_FAMILIES_BY_TYPE, **NOT_FAMILIES_BY_VALUE}
    for label, value in families.items():
        error = TypeError if label in NOT_FAMILIES_BY_TYPE else ValueError
        yield Case(f"watch-family {label}", partial(watch, family=value), error, os=True)
    for label, value, error in [
        ("nan", math.nan, ValueError),
        ("inf", math.inf, ValueError),
        ("1e300", 1e300, ValueError),
        ("2**1000", 2**1000, ValueError),
        ("above TIMEOUT_MAX", threading.TIMEOUT_MAX * 2, ValueError),
        ("-2**1000", -(2**1000), ValueError),
        ("True", True, TypeError),
        ("bytes", b"1", TypeError),
        ("complex", 1j, TypeError),
        ("Decimal", Decimal(1), TypeError),
    ]:
        yield Case(f"watch-settle {label}", partial(watch, settle=value), error, os=True)
    for label, value, error in [
        ("bytes", b"bounded", TypeError),
        ("object", object(), TypeError),
        ("empty", "", ValueError),
        ("capitalized", "Latest", ValueError),
    ]:
        yield Case(f"watch-backpressure {label}", partial(watch, backpressure=value), error, os=True)
    for label, value, error in [
        ("True", True, TypeError),
        ("object", object(), TypeError),
        ("-2**1000", -(2**1000), ValueError),
    ]:
        yield Case(f"watch-maxsize {label}", partial(watch, maxsize=value), error, os=True)
    for label, value in NOT_CALLABLE.items():
        yield Case(f"watch-callback {label}", partial(watch, callback=value), TypeError, os=True)
    for flag in ("complete", "snapshot", "ignore_lifetime_changes"):
        yield Case(f"watch-{flag} refusing bool()", partial(watch, **{flag: BadBool()}), BoolRefused, os=True)
    yield Case("watch-unknown keyword", lambda: watch(kinds=["route"]), TypeError, os=True)
    yield Case("watch-family given positionally", lambda: watch("route", socket.AF_INET), TypeError, os=True)

    # get() and aget(): the timeout is None or seconds (0 or less polls, inf waits without end)
    timeouts: list[tuple[str, object, type[BaseException]]] = [
        ("str", "1", TypeError),
        ("bytes", b"1", TypeError),
        ("object", object(), TypeError),
        ("complex", 1j, TypeError),
        ("True", True, TypeError),
        ("nan", math.nan, ValueError),
    ]
    for label, value, expected in timeouts:
        yield Case(f"Watcher.get-timeout {label}", partial(get_from_closed_watcher, value), expected, os=True)
        yield Case(
            f"Watcher.aget-timeout {label}",
            partial(aget_from_closed_watcher, value),
            expected,
            os=True,
        )
    for label, value in [
        ("0", 0),
        ("-1", -1),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("1e300", 1e300),
        ("10**400", 10**400),  # beyond any float
        ("-10**400", -(10**400)),
    ]:
        # closed and drained: WatcherClosed at once, whatever the timeout (no OverflowError, no wait)
        yield Case(
            f"Watcher.get-timeout {label} when closed",
            partial(get_from_closed_watcher, value),
            netnotify.WatcherClosed,
            os=True,
        )
    yield Case("Watcher.get-2 arguments", partial(get_from_closed_watcher, 1, 2), TypeError, os=True)
    yield Case(
        "Watcher.close-an argument", lambda: any_watcher(closed_watcher()).close(1), TypeError, os=True
    )
    yield Case("Watcher.close-again", lambda: closed_watcher().close(), None, os=True)
    yield Case("Watcher.get-of a callback watcher", get_from_callback_watcher, TypeError, os=True)


CASES = [*low_level_cases(), *row_cases(), *watch_cases()]
assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


def _param(case: Case) -> Any:
    linux = pytest.mark.linux(reason="the OS's answer is Linux's here (another OS may name it differently)")
    return pytest.param(case, id=case.id, marks=[linux] if case.linux else [])


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_argument(case: Case, request: pytest.FixtureRequest) -> None:
    if case.os:
        request.getfixturevalue("isolated")  # Linux: a private network namespace for what it registers
    problem = outcome_problem(case, attempt(case))
    assert problem is None, problem


def test_the_whole_matrix_in_one_process(isolated: NetNS | None) -> None:
    """Every case, twice, in this process: no crash, no state left behind that changes a later outcome."""
    runnable = [case for case in CASES if not case.linux or isinstance(isolated, NetNS)]
    problems: list[str] = []
    for _ in range(2):
        for case in runnable:
            problem = outcome_problem(case, attempt(case))
            if problem is not None:
                problems.append(problem)
        gc.collect()
    assert problems == [], "\n".join(problems)
    # Positive control: the calls still work after all that.
    table = api.get_ip_forward_table2(socket.AF_UNSPEC)
    assert isinstance(table, list)
    with api.notify_route_change2(socket.AF_UNSPEC, noop) as handle:
        assert handle.active
    assert not handle.active


@pytest.mark.parametrize(
    "timeout", [math.inf, 10**400, threading.TIMEOUT_MAX * 2], ids=["inf", "10**400", "huge"]
)
def test_get_waits_without_end_for_a_timeout_beyond_what_threading_can_wait(
    isolated: NetNS | None, timeout: float
) -> None:
    """Such a timeout is a wait without end (it used to raise OverflowError at once)."""
    watcher = netnotify.watch("route")
    closer = threading.Timer(0.3, watcher.close)
    closer.start()
    try:
        with pytest.raises(netnotify.WatcherClosed):
            watcher.get(timeout)
    finally:
        closer.join()
        watcher.close()


def test_aget_waits_without_end_for_an_infinite_timeout(isolated: NetNS | None) -> None:
    async def main() -> None:
        watcher = netnotify.watch("route")
        asyncio.get_running_loop().call_later(0.3, watcher.close)
        with pytest.raises(netnotify.WatcherClosed):
            await watcher.aget(10**400)

    asyncio.run(main())


def test_matrix_size() -> None:
    """The matrix as counted in the report; a case lost by a refactoring shows here."""
    assert len(CASES) >= 600, len(CASES)
