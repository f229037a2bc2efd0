"""ConvertInterface*: LUID, index and name of real interfaces in a private namespace."""

from __future__ import annotations

import pytest
from nettest import IF_TYPE_ETHERNET, IF_TYPE_LOOPBACK, NetNS, luid

import netnotify

pytestmark = pytest.mark.linux


def test_conversions_of_a_veth_agree_with_the_documented_luid(ns: NetNS) -> None:
    index = ns.veth("v0", "v1")
    expected = luid(IF_TYPE_ETHERNET, index)
    assert netnotify.convert_interface_index_to_luid(index) == expected
    assert netnotify.convert_interface_luid_to_index(expected) == index
    assert netnotify.convert_interface_luid_to_name(expected) == "v0"
    assert netnotify.convert_interface_name_to_luid("v0") == expected


def test_loopback_has_the_loopback_type(ns: NetNS) -> None:
    index = ns.ifindex("lo")
    assert netnotify.convert_interface_name_to_luid("lo") == luid(IF_TYPE_LOOPBACK, index)


def test_absent_interfaces_raise_not_found(ns: NetNS) -> None:
    index = ns.veth("v0", "v1")
    with pytest.raises(netnotify.NotFoundError) as info:
        netnotify.convert_interface_name_to_luid("nosuchif")
    assert info.value.winerror == 1168
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_index_to_luid(index + 1000)
    # the right index with the wrong interface type is not that interface
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_luid_to_index(luid(IF_TYPE_LOOPBACK, index))
    with pytest.raises(netnotify.NotFoundError):
        netnotify.convert_interface_luid_to_name(0)
