"""Rows and events as JSON-ready dicts: what ``netnotify watch --json`` and ``netnotify show --json`` print.

A row becomes an object with one member per row member (``row._asdict()``), converted as follows:

- ``ipaddress`` addresses and networks: their ``str`` (an IPv6 address keeps its scope: ``"fe80::1%3"``);
- ``family`` (``socket.AddressFamily``): its name, ``"AF_INET"`` or ``"AF_INET6"``;
- the ``NL_*`` enumerations (``IntEnum``): their member name in lower case (``"preferred"``, ``"manual"``,
  ``"router_advertisement"``); a value with no member stays a number;
- tuples (``zone_indices``): arrays; bools, ints and ``None`` as they are.

The member ``interface_name`` follows ``interface_index``: the interface's name, or ``null`` when it is not
known (an interface deleted before its name was ever seen).
"""

from __future__ import annotations

import enum
import json
import socket
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias, assert_never

from ._netnotify import MibIpForwardRow2, MibIpInterfaceRow, MibUnicastIpAddressRow
from ._watch import (
    AddressEvent,
    Event,
    InterfaceEvent,
    Overflow,
    RouteEvent,
    SnapshotComplete,
    StableTableEvent,
    TeredoPortEvent,
)

__all__ = ["JSONObject", "JSONValue", "NameOf", "dumps", "event_to_json", "jsonable", "row_to_json"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
JSONObject: TypeAlias = "dict[str, JSONValue]"
Row: TypeAlias = MibIpInterfaceRow | MibUnicastIpAddressRow | MibIpForwardRow2
# Looks up the name of an interface by its index; None when it is not known.
NameOf: TypeAlias = Callable[[int], str | None]


def jsonable(value: object) -> JSONValue:
    """The JSON form of one row member (see the module's docstring)."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, socket.AddressFamily):
        return value.name
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, IPv4Address | IPv6Address | IPv4Network | IPv6Network):
        return str(value)
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    raise TypeError(f"no JSON form for a {type(value).__name__}: {value!r}")


def row_to_json(row: Row, name_of: NameOf | None = None) -> JSONObject:
    """A row as a JSON object: its members, converted, with ``interface_name`` after ``interface_index``."""
    result: JSONObject = {}
    for member, value in row._asdict().items():
        result[member] = jsonable(value)
        if member == "interface_index":
            result["interface_name"] = name_of(row.interface_index) if name_of is not None else None
    return result


def event_to_json(event: Event, name_of: NameOf | None = None) -> JSONObject:
    """An event of ``netnotify.watch()`` as a JSON object.

    Row events: ``{"time", "kind", "change", "complete", "row"}``; Teredo: ``{"time", "kind": "teredo",
    "change", "port"}``; stable table: ``{"time", "kind": "stable", "table": [rows]}``; the markers
    ``{"time", "event": "snapshot_complete"}`` and ``{"time", "event": "overflow", "dropped"}``. ``time`` is
    seconds since the epoch.
    """
    if isinstance(event, InterfaceEvent | AddressEvent | RouteEvent):
        return {
            "time": event.time,
            "kind": event.kind.value,
            "change": event.change.value,
            "complete": event.complete,
            "row": row_to_json(event.row, name_of),
        }
    if isinstance(event, TeredoPortEvent):
        return {"time": event.time, "kind": "teredo", "change": event.change.value, "port": event.port}
    if isinstance(event, StableTableEvent):
        return {"time": event.time, "kind": "stable", "table": [row_to_json(r, name_of) for r in event.table]}
    if isinstance(event, SnapshotComplete):
        return {"time": event.time, "event": "snapshot_complete"}
    if isinstance(event, Overflow):
        return {"time": event.time, "event": "overflow", "dropped": event.dropped}
    assert_never(event)


def dumps(value: JSONObject) -> str:
    """One line of JSON (no newline inside it)."""
    return json.dumps(value, allow_nan=False)
