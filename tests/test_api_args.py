"""Argument checking of every call taking a family or a callback, the error classes, and Teredo."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import pytest
from nettest import NetNS

import netnotify

api: Any = netnotify  # the calls below pass wrong types on purpose


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
@pytest.mark.parametrize("family", [99, -1, 1, 2**70, -(2**70), 2**32 + 2, 2**64 + 10])
def test_unknown_family_is_an_invalid_parameter(ns: NetNS, name: str, family: int) -> None:
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
def test_family_that_is_no_int_is_a_type_error(ns: NetNS, name: str, family: object) -> None:
    with pytest.raises(TypeError):
        attempt(FAMILY_CALLS[name], family)


@pytest.mark.parametrize("name", FAMILY_CALLS)
@pytest.mark.parametrize(
    "family",
    [0, 2, 10, socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6],
    ids=["0", "2", "10", "AF_UNSPEC", "AF_INET", "AF_INET6"],
)
def test_valid_families_are_accepted(ns: NetNS, name: str, family: int) -> None:
    result = attempt(FAMILY_CALLS[name], family)
    assert isinstance(result, (list, netnotify.NotificationHandle))


@pytest.mark.parametrize("name", CALLBACK_CALLS)
@pytest.mark.parametrize("callback", [None, 42, "callback"], ids=["None", "int", "str"])
def test_callback_that_is_not_callable_is_a_type_error(ns: NetNS, name: str, callback: object) -> None:
    with pytest.raises(TypeError):
        attempt(CALLBACK_CALLS[name], callback)


def test_teredo_is_not_supported_on_linux(ns: NetNS) -> None:
    with pytest.raises(netnotify.NotSupportedError) as caught:
        attempt(lambda callback: api.notify_teredo_port_change(callback), noop)
    assert caught.value.winerror == 50
    with pytest.raises(netnotify.NotSupportedError) as caught:
        netnotify.get_teredo_port()
    assert caught.value.winerror == 50
    assert isinstance(caught.value, netnotify.NetioError)


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
