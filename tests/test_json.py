"""The JSON form of rows and events (netnotify._json, what `netnotify watch|show --json` print). Portable."""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from typing import Any

import pytest
from nettest import UNDER_WINE, NetNS

import netnotify
from netnotify._json import JSONObject, Row, dumps, event_to_json, jsonable, row_to_json

INTERFACE = netnotify.MibIpInterfaceRow(
    family=socket.AF_INET6,
    interface_luid=6 << 48 | 3 << 24,
    interface_index=3,
    forwarding_enabled=True,
    router_discovery_behavior=netnotify.NlRouterDiscoveryBehavior.ENABLED,
    link_local_address_behavior=7,  # no member: stays a number
    zone_indices=[0, 3, 3, *[0] * 13],
    nl_mtu=1500,
    connected=True,
)
ADDRESS = netnotify.MibUnicastIpAddressRow(
    address="fe80::1%3",
    interface_luid=6 << 48 | 3 << 24,
    interface_index=3,
    prefix_origin=netnotify.NlPrefixOrigin.ROUTER_ADVERTISEMENT,
    suffix_origin=netnotify.NlSuffixOrigin.LINK_LAYER_ADDRESS,
    valid_lifetime=0xFFFFFFFF,
    preferred_lifetime=600,
    on_link_prefix_length=64,
    dad_state=netnotify.NlDadState.PREFERRED,
    scope_id=3,
)
ROUTE = netnotify.MibIpForwardRow2(
    interface_index=3,
    destination_prefix="10.50.0.0/24",
    next_hop="10.9.0.2",
    metric=7,
    protocol=netnotify.NlRouteProtocol.NETMGMT,
    immortal=True,
    origin=netnotify.NlRouteOrigin.MANUAL,
)
ROWS = [INTERFACE, ADDRESS, ROUTE]


def names(index: int) -> str | None:
    return {3: "eth0"}.get(index)


def roundtrip(value: JSONObject) -> Any:
    line = dumps(value)
    assert "\n" not in line
    return json.loads(line)


# ---------------------------------------------------------------- members


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ipaddress.IPv4Address("192.0.2.7"), "192.0.2.7"),
        (ipaddress.IPv6Address("2001:db8::1"), "2001:db8::1"),
        (ipaddress.IPv6Address("fe80::1%3"), "fe80::1%3"),
        (ipaddress.IPv4Network("0.0.0.0/0"), "0.0.0.0/0"),
        (ipaddress.IPv6Network("2001:db8::/64"), "2001:db8::/64"),
        (socket.AF_INET, "AF_INET"),
        (socket.AF_INET6, "AF_INET6"),
        (netnotify.NlDadState.PREFERRED, "preferred"),
        (netnotify.NlPrefixOrigin.ROUTER_ADVERTISEMENT, "router_advertisement"),
        (netnotify.NlRouterDiscoveryBehavior.UNCHANGED, "unchanged"),
        ((0, 3, 3), [0, 3, 3]),
        (True, True),
        (False, False),
        (0, 0),
        (2**64 - 1, 2**64 - 1),
        (None, None),
        ("eth0", "eth0"),
        (1.5, 1.5),
    ],
)
def test_jsonable_members(value: object, expected: object) -> None:
    converted = jsonable(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_jsonable_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="no JSON form"):
        jsonable(object())
    with pytest.raises(TypeError, match="no JSON form"):
        jsonable(b"bytes")


# ---------------------------------------------------------------- rows


@pytest.mark.parametrize("row", ROWS, ids=lambda row: type(row).__name__)
def test_row_members_in_order_with_the_interface_name(row: Any) -> None:
    obj = roundtrip(row_to_json(row, names))
    fields = list(row._fields)
    expected = [*fields[: fields.index("interface_index") + 1], "interface_name"]
    expected += fields[fields.index("interface_index") + 1 :]
    assert list(obj) == expected
    assert obj["interface_name"] == "eth0"
    assert obj["interface_index"] == 3


@pytest.mark.parametrize("row", ROWS, ids=lambda row: type(row).__name__)
def test_row_without_a_known_name(row: Any) -> None:
    assert row_to_json(row)["interface_name"] is None
    assert row_to_json(row, lambda index: None)["interface_name"] is None


def test_interface_row() -> None:
    obj = roundtrip(row_to_json(INTERFACE))
    assert obj["family"] == "AF_INET6"
    assert obj["interface_luid"] == 6 << 48 | 3 << 24
    assert obj["forwarding_enabled"] is True
    assert obj["weak_host_send"] is False
    assert obj["router_discovery_behavior"] == "enabled"
    assert obj["link_local_address_behavior"] == 7
    assert obj["zone_indices"] == [0, 3, 3, *[0] * 13]
    assert obj["nl_mtu"] == 1500
    assert obj["connected"] is True


def test_address_row_keeps_the_scope() -> None:
    obj = roundtrip(row_to_json(ADDRESS))
    assert obj["address"] == "fe80::1%3"
    assert ipaddress.ip_address(obj["address"]) == ADDRESS.address
    assert obj["prefix_origin"] == "router_advertisement"
    assert obj["suffix_origin"] == "link_layer_address"
    assert obj["valid_lifetime"] == 0xFFFFFFFF
    assert obj["preferred_lifetime"] == 600
    assert obj["on_link_prefix_length"] == 64
    assert obj["dad_state"] == "preferred"
    assert obj["skip_as_source"] is False
    assert obj["scope_id"] == 3


def test_route_row() -> None:
    obj = roundtrip(row_to_json(ROUTE))
    assert obj["destination_prefix"] == "10.50.0.0/24"
    assert obj["next_hop"] == "10.9.0.2"
    assert obj["metric"] == 7
    assert obj["protocol"] == "netmgmt"
    assert obj["origin"] == "manual"
    assert obj["immortal"] is True


def test_key_row_without_an_address() -> None:
    obj = roundtrip(row_to_json(netnotify.MibUnicastIpAddressRow(interface_index=1)))
    assert obj["address"] is None
    route = roundtrip(row_to_json(netnotify.MibIpForwardRow2()))
    assert route["destination_prefix"] is None
    assert route["next_hop"] is None


def test_rows_of_the_os_tables(isolated: NetNS | None) -> None:
    """Every row the OS reports converts (on Linux, those of the test's namespace)."""
    rows: list[Row] = []
    for read in (
        netnotify.get_ip_interface_table,
        netnotify.get_unicast_ip_address_table,
        netnotify.get_ip_forward_table2,
    ):
        try:
            rows += read(socket.AF_UNSPEC)
        except netnotify.NotSupportedError:
            if not UNDER_WINE:  # Wine 8's GetIpInterfaceTable returns ERROR_NOT_SUPPORTED
                raise
    assert rows
    for row in rows:
        obj = roundtrip(row_to_json(row, names))
        assert set(obj) == {*row._fields, "interface_name"}
        assert obj["interface_index"] == row.interface_index


# ---------------------------------------------------------------- events


def test_row_events() -> None:
    change = netnotify.Change
    events: list[netnotify.InterfaceEvent | netnotify.AddressEvent | netnotify.RouteEvent] = [
        netnotify.InterfaceEvent(change=change.CHANGE, row=INTERFACE, time=1763720000.125, complete=True),
        netnotify.AddressEvent(change=change.SNAPSHOT, row=ADDRESS, time=1763720000.5, complete=True),
        netnotify.RouteEvent(change=change.DELETE, row=ROUTE, time=1763720001.0, complete=False),
    ]
    expected = [("interface", "change", True), ("address", "snapshot", True), ("route", "delete", False)]
    for event, (kind, what, complete) in zip(events, expected, strict=True):
        obj = roundtrip(event_to_json(event, names))
        assert list(obj) == ["time", "kind", "change", "complete", "row"]
        assert (obj["kind"], obj["change"], obj["complete"]) == (kind, what, complete)
        assert obj["time"] == event.time
        assert obj["row"] == roundtrip(row_to_json(event.row, names))
        assert obj["row"]["interface_name"] == "eth0"


def test_teredo_event() -> None:
    event = netnotify.TeredoPortEvent(change=netnotify.Change.ADD, port=3544, time=5.25)
    assert roundtrip(event_to_json(event)) == {"time": 5.25, "kind": "teredo", "change": "add", "port": 3544}


def test_stable_table_event() -> None:
    event = netnotify.StableTableEvent(table=(ADDRESS,), time=7.0)
    obj = roundtrip(event_to_json(event, names))
    assert list(obj) == ["time", "kind", "table"]
    assert obj["kind"] == "stable"
    assert obj["table"] == [roundtrip(row_to_json(ADDRESS, names))]


def test_markers() -> None:
    assert roundtrip(event_to_json(netnotify.SnapshotComplete(time=2.5))) == {
        "time": 2.5,
        "event": "snapshot_complete",
    }
    assert roundtrip(event_to_json(netnotify.Overflow(dropped=12, time=3.5))) == {
        "time": 3.5,
        "event": "overflow",
        "dropped": 12,
    }


def test_dumps_is_strict_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        dumps({"time": math.nan})
    assert dumps({"name": "é"}) == '{"name": "\\u00e9"}'
