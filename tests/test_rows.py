"""Row objects: the members docs/api.md lists, keyword construction, equality, hashing, immutability."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

import netnotify

INTERFACE_FIELDS = [
    "family",
    "interface_luid",
    "interface_index",
    "max_reassembly_size",
    "interface_identifier",
    "min_router_advertisement_interval",
    "max_router_advertisement_interval",
    "advertising_enabled",
    "forwarding_enabled",
    "weak_host_send",
    "weak_host_receive",
    "use_automatic_metric",
    "use_neighbor_unreachability_detection",
    "managed_address_configuration_supported",
    "other_stateful_configuration_supported",
    "advertise_default_route",
    "router_discovery_behavior",
    "dad_transmits",
    "base_reachable_time",
    "retransmit_time",
    "path_mtu_discovery_timeout",
    "link_local_address_behavior",
    "link_local_address_timeout",
    "zone_indices",
    "site_prefix_length",
    "metric",
    "nl_mtu",
    "connected",
    "supports_wake_up_patterns",
    "supports_neighbor_discovery",
    "supports_router_discovery",
    "reachable_time",
    "transmit_offload",
    "receive_offload",
    "disable_default_routes",
]
ADDRESS_FIELDS = [
    "address",
    "interface_luid",
    "interface_index",
    "prefix_origin",
    "suffix_origin",
    "valid_lifetime",
    "preferred_lifetime",
    "on_link_prefix_length",
    "skip_as_source",
    "dad_state",
    "scope_id",
    "creation_time_stamp",
]
ROUTE_FIELDS = [
    "interface_luid",
    "interface_index",
    "destination_prefix",
    "next_hop",
    "site_prefix_length",
    "valid_lifetime",
    "preferred_lifetime",
    "metric",
    "protocol",
    "loopback",
    "autoconfigure_address",
    "publish",
    "immortal",
    "age",
    "origin",
]

ROW_CLASSES: list[tuple[Any, list[str]]] = [
    (netnotify.MibIpInterfaceRow, INTERFACE_FIELDS),
    (netnotify.MibUnicastIpAddressRow, ADDRESS_FIELDS),
    (netnotify.MibIpForwardRow2, ROUTE_FIELDS),
]
IDS = ["interface", "address", "route"]


@pytest.mark.parametrize(("cls", "fields"), ROW_CLASSES, ids=IDS)
def test_fields_are_the_documented_members(cls: Any, fields: list[str]) -> None:
    row = cls()
    assert list(row._fields) == fields
    assert list(row._asdict()) == fields


@pytest.mark.parametrize(("cls", "fields"), ROW_CLASSES, ids=IDS)
def test_fields_is_a_class_attribute(cls: Any, fields: list[str]) -> None:
    """As on a namedtuple, and as the stub declares it (ClassVar)."""
    assert list(cls._fields) == fields


def test_c_names_are_aliases() -> None:
    assert netnotify.MIB_IPINTERFACE_ROW is netnotify.MibIpInterfaceRow
    assert netnotify.MIB_UNICASTIPADDRESS_ROW is netnotify.MibUnicastIpAddressRow
    assert netnotify.MIB_IPFORWARD_ROW2 is netnotify.MibIpForwardRow2


def test_members_default_to_zero() -> None:
    row = netnotify.MibIpInterfaceRow()
    assert row.interface_index == 0
    assert row.interface_luid == 0
    assert row.nl_mtu == 0
    assert not row.connected
    assert row.zone_indices == (0,) * 16
    route = netnotify.MibIpForwardRow2()
    assert (route.metric, route.interface_index, route.age) == (0, 0, 0)


def test_key_row_keeps_what_it_was_built_with() -> None:
    row = netnotify.MibIpInterfaceRow(family=socket.AF_INET6, interface_index=3)
    assert row.family == socket.AF_INET6
    assert isinstance(row.family, socket.AddressFamily)
    assert row.interface_index == 3
    address = ipaddress.IPv6Address("2001:db8::1")
    assert netnotify.MibUnicastIpAddressRow(address=address).address == address
    prefix = ipaddress.IPv4Network("10.1.0.0/16")
    assert netnotify.MibIpForwardRow2(destination_prefix=prefix).destination_prefix == prefix


def test_equality_hash_and_replace() -> None:
    a = netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_index=3, nl_mtu=1500)
    b = netnotify.MibIpInterfaceRow(family=socket.AF_INET, interface_index=3, nl_mtu=1500)
    c = a._replace(nl_mtu=1400)
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert c.nl_mtu == 1400
    assert c.interface_index == 3
    assert a.nl_mtu == 1500  # _replace makes a new row
    assert len({a, b, c}) == 2


def test_rows_are_immutable() -> None:
    row: Any = netnotify.MibIpForwardRow2(metric=5)
    with pytest.raises((AttributeError, TypeError)):
        row.metric = 6
    assert row.metric == 5


def test_repr_is_readable() -> None:
    text = repr(
        netnotify.MibUnicastIpAddressRow(address=ipaddress.IPv4Address("192.0.2.7"), interface_index=4)
    )
    assert "MibUnicastIpAddressRow" in text
    assert "192.0.2.7" in text
    assert "interface_index=4" in text


def test_unknown_keyword_is_rejected() -> None:
    cls: Any = netnotify.MibIpInterfaceRow
    with pytest.raises(TypeError):
        cls(no_such_member=1)


def test_notification_types() -> None:
    kinds = netnotify.MibNotificationType
    assert [(kind.name, int(kind)) for kind in kinds] == [
        ("PARAMETER_NOTIFICATION", 0),
        ("ADD_INSTANCE", 1),
        ("DELETE_INSTANCE", 2),
        ("INITIAL_NOTIFICATION", 3),
    ]
