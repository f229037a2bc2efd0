"""Argument checking of every call, and the error classes. Portable: runs on Linux, Windows and Wine."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import pytest
from nettest import UNDER_WINE, NetNS

import netnotify

api: Any = netnotify  # the calls below pass wrong types on purpose

# AF_INET6 is 10 on Linux and 23 on Windows: the other platform's value is no family here.
OTHER_PLATFORM_AF_INET6 = 23 if int(socket.AF_INET6) == 10 else 10

# What Wine 8's iphlpapi cannot do: these calls fail there with NotSupportedError even for valid arguments.
WINE_CANNOT = {
    "get_ip_interface_table": "Wine 8's GetIpInterfaceTable returns ERROR_NOT_SUPPORTED (50)",
    "notify_stable_unicast_ip_address_table": "Wine 8 lacks NotifyStableUnicastIpAddressTable (127)",
}


def noop(*args: object) -> None:
    pass


# Every call that takes a family, as a function of the family.
FAMILY_CALLS: dict[str, Callable[[Any], object]] = {
    "notify_ip_interface_change": lambda family: api.notify_ip_interface_change(family, noop),
    "notify_unicast_ip_address_change": lambda family: api.notify_unicast_ip_address_change(family, noop),
    "notify_route_change2": lambda family: api.notify_route_change2(family, noop),
    "notify_stable_unicast_ip_address_table": lambda family: api.notify_stable_unicast_ip_address_table(
        family, noop
    ),
    "get_ip_interface_table": lambda family: api.get_ip_interface_table(family),
    "get_unicast_ip_address_table": lambda family: api.get_unicast_ip_address_table(family),
    "get_ip_forward_table2": lambda family: api.get_ip_forward_table2(family),
}
# Every notify call, as a function of the callback.
CALLBACK_CALLS: dict[str, Callable[[Any], object]] = {
    "notify_ip_interface_change": lambda callback: api.notify_ip_interface_change(0, callback),
    "notify_unicast_ip_address_change": lambda callback: api.notify_unicast_ip_address_change(0, callback),
    "notify_route_change2": lambda callback: api.notify_route_change2(0, callback),
    "notify_stable_unicast_ip_address_table": lambda callback: api.notify_stable_unicast_ip_address_table(
        0, callback
    ),
}


def attempt(call: Callable[[Any], object], argument: object) -> object:
    """Calls; a registration made by mistake is cancelled rather than left running."""
    result = call(argument)
    if isinstance(result, netnotify.NotificationHandle):
        result.cancel()
    return result


@pytest.mark.parametrize("name", FAMILY_CALLS)
@pytest.mark.parametrize(
    "family",
    [99, -1, 1, 2**70, -(2**70), 2**32 + 2, 2**64 + int(socket.AF_INET6), OTHER_PLATFORM_AF_INET6],
    ids=["99", "-1", "1", "2**70", "-2**70", "2**32+2", "2**64+AF_INET6", "AF_INET6 of the other platform"],
)
def test_unknown_family_is_an_invalid_parameter(isolated: NetNS | None, name: str, family: int) -> None:
    with pytest.raises(netnotify.InvalidParameterError) as caught:
        attempt(FAMILY_CALLS[name], family)
    error = caught.value
    assert error.winerror == 87
    assert error.errno == errno.EINVAL
    assert isinstance(error, ValueError)
    assert isinstance(error, OSError)
    assert isinstance(error, netnotify.NetioError)


@pytest.mark.parametrize("name", FAMILY_CALLS)
@pytest.mark.parametrize("family", ["x", None, 2.0, b"\x02"], ids=["str", "None", "float", "bytes"])
def test_family_that_is_no_int_is_a_type_error(isolated: NetNS | None, name: str, family: object) -> None:
    with pytest.raises(TypeError):
        attempt(FAMILY_CALLS[name], family)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(
                UNDER_WINE and name in WINE_CANNOT,
                reason=WINE_CANNOT.get(name, ""),
                raises=netnotify.NotSupportedError,
                strict=True,
            ),
        )
        for name in FAMILY_CALLS
    ],
)
@pytest.mark.parametrize(
    "family",
    [0, int(socket.AF_INET), int(socket.AF_INET6), socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6],
    ids=["0", "int AF_INET", "int AF_INET6", "AF_UNSPEC", "AF_INET", "AF_INET6"],
)
def test_valid_families_are_accepted(isolated: NetNS | None, name: str, family: int) -> None:
    result = attempt(FAMILY_CALLS[name], family)
    assert isinstance(result, (list, netnotify.NotificationHandle))


@pytest.mark.parametrize("name", CALLBACK_CALLS)
@pytest.mark.parametrize("callback", [None, 42, "callback"], ids=["None", "int", "str"])
def test_callback_that_is_not_callable_is_a_type_error(
    isolated: NetNS | None, name: str, callback: object
) -> None:
    with pytest.raises(TypeError):
        attempt(CALLBACK_CALLS[name], callback)


@pytest.mark.parametrize("callback", [None, 42, "callback"], ids=["None", "int", "str"])
def test_teredo_callback_that_is_not_callable_is_a_type_error(
    isolated: NetNS | None, callback: object
) -> None:
    with pytest.raises(TypeError):
        attempt(lambda callback: api.notify_teredo_port_change(callback), callback)


ENTRY_CALLS: dict[str, tuple[Callable[[Any], object], type]] = {
    "get_ip_interface_entry": (api.get_ip_interface_entry, netnotify.MibIpInterfaceRow),
    "get_unicast_ip_address_entry": (api.get_unicast_ip_address_entry, netnotify.MibUnicastIpAddressRow),
    "get_ip_forward_entry2": (api.get_ip_forward_entry2, netnotify.MibIpForwardRow2),
}
ROW_TYPES = [netnotify.MibIpInterfaceRow, netnotify.MibUnicastIpAddressRow, netnotify.MibIpForwardRow2]


@pytest.mark.parametrize("name", ENTRY_CALLS)
def test_entry_key_that_is_no_row_of_its_kind_is_a_type_error(name: str) -> None:
    call, own_type = ENTRY_CALLS[name]
    other_rows = [row_type() for row_type in ROW_TYPES if row_type is not own_type]
    for wrong in [None, 3, "row", own_type, object(), *other_rows]:
        with pytest.raises(TypeError):
            call(wrong)


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (api.convert_interface_luid_to_index, "1", TypeError),
        (api.convert_interface_luid_to_index, -1, OverflowError),
        (api.convert_interface_luid_to_name, 2**64, OverflowError),
        (api.convert_interface_index_to_luid, 2**32, OverflowError),
        (api.convert_interface_index_to_luid, None, TypeError),
        (api.convert_interface_name_to_luid, b"lo", TypeError),
        (api.convert_interface_name_to_luid, "l\0o", netnotify.InvalidParameterError),
    ],
)
def test_conversion_argument_errors(
    call: Callable[[Any], object], argument: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(argument)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (netnotify.NetioError, (OSError,)),
        (netnotify.InvalidParameterError, (netnotify.NetioError, ValueError)),
        (netnotify.InvalidHandleError, (netnotify.NetioError, ValueError)),
        (netnotify.NotFoundError, (netnotify.NetioError,)),
        (netnotify.NotSupportedError, (netnotify.NetioError,)),
        (netnotify.AccessDeniedError, (netnotify.NetioError, PermissionError)),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_error_classes(error: type[BaseException], bases: tuple[type[BaseException], ...]) -> None:
    for base in bases:
        assert issubclass(error, base)
