# Typed stub of the C extension netnotify._netnotify; the contract is docs/api.md.

import socket
import sys
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, Self, TypeAlias, TypeVar, final, overload

from ._enums import (
    MibNotificationType,
    NlDadState,
    NlLinkLocalAddressBehavior,
    NlPrefixOrigin,
    NlRouteOrigin,
    NlRouteProtocol,
    NlRouterDiscoveryBehavior,
    NlSuffixOrigin,
)

_T = TypeVar("_T")
# Row members read back as ipaddress objects. A str given to a constructor is parsed with ipaddress.
# (A row built without an address member reads it back as None; rows from the OS always have one.)
_IPAddress: TypeAlias = IPv4Address | IPv6Address
_IPNetwork: TypeAlias = IPv4Network | IPv6Network

__build_version__: Final[str]

# ---------------------------------------------------------------- rows

# MIB_IPINTERFACE_ROW: the per-family configuration of one interface.
@final
class MibIpInterfaceRow:
    _fields: ClassVar[tuple[str, ...]]
    @property
    def _identity(self) -> bytes: ...
    def __init__(
        self,
        *,
        family: int = ...,
        interface_luid: int = ...,
        interface_index: int = ...,
        max_reassembly_size: int = ...,
        interface_identifier: int = ...,
        min_router_advertisement_interval: int = ...,
        max_router_advertisement_interval: int = ...,
        advertising_enabled: bool = ...,
        forwarding_enabled: bool = ...,
        weak_host_send: bool = ...,
        weak_host_receive: bool = ...,
        use_automatic_metric: bool = ...,
        use_neighbor_unreachability_detection: bool = ...,
        managed_address_configuration_supported: bool = ...,
        other_stateful_configuration_supported: bool = ...,
        advertise_default_route: bool = ...,
        router_discovery_behavior: int = ...,
        dad_transmits: int = ...,
        base_reachable_time: int = ...,
        retransmit_time: int = ...,
        path_mtu_discovery_timeout: int = ...,
        link_local_address_behavior: int = ...,
        link_local_address_timeout: int = ...,
        zone_indices: Iterable[int] = ...,
        site_prefix_length: int = ...,
        metric: int = ...,
        nl_mtu: int = ...,
        connected: bool = ...,
        supports_wake_up_patterns: bool = ...,
        supports_neighbor_discovery: bool = ...,
        supports_router_discovery: bool = ...,
        reachable_time: int = ...,
        transmit_offload: int = ...,
        receive_offload: int = ...,
        disable_default_routes: bool = ...,
    ) -> None: ...
    def _replace(
        self,
        *,
        family: int = ...,
        interface_luid: int = ...,
        interface_index: int = ...,
        max_reassembly_size: int = ...,
        interface_identifier: int = ...,
        min_router_advertisement_interval: int = ...,
        max_router_advertisement_interval: int = ...,
        advertising_enabled: bool = ...,
        forwarding_enabled: bool = ...,
        weak_host_send: bool = ...,
        weak_host_receive: bool = ...,
        use_automatic_metric: bool = ...,
        use_neighbor_unreachability_detection: bool = ...,
        managed_address_configuration_supported: bool = ...,
        other_stateful_configuration_supported: bool = ...,
        advertise_default_route: bool = ...,
        router_discovery_behavior: int = ...,
        dad_transmits: int = ...,
        base_reachable_time: int = ...,
        retransmit_time: int = ...,
        path_mtu_discovery_timeout: int = ...,
        link_local_address_behavior: int = ...,
        link_local_address_timeout: int = ...,
        zone_indices: Iterable[int] = ...,
        site_prefix_length: int = ...,
        metric: int = ...,
        nl_mtu: int = ...,
        connected: bool = ...,
        supports_wake_up_patterns: bool = ...,
        supports_neighbor_discovery: bool = ...,
        supports_router_discovery: bool = ...,
        reachable_time: int = ...,
        transmit_offload: int = ...,
        receive_offload: int = ...,
        disable_default_routes: bool = ...,
    ) -> Self: ...
    def _asdict(self) -> dict[str, Any]: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def family(self) -> socket.AddressFamily: ...
    @property
    def interface_luid(self) -> int: ...
    @property
    def interface_index(self) -> int: ...
    @property
    def max_reassembly_size(self) -> int: ...
    @property
    def interface_identifier(self) -> int: ...
    @property
    def min_router_advertisement_interval(self) -> int: ...
    @property
    def max_router_advertisement_interval(self) -> int: ...
    @property
    def advertising_enabled(self) -> bool: ...
    @property
    def forwarding_enabled(self) -> bool: ...
    @property
    def weak_host_send(self) -> bool: ...
    @property
    def weak_host_receive(self) -> bool: ...
    @property
    def use_automatic_metric(self) -> bool: ...
    @property
    def use_neighbor_unreachability_detection(self) -> bool: ...
    @property
    def managed_address_configuration_supported(self) -> bool: ...
    @property
    def other_stateful_configuration_supported(self) -> bool: ...
    @property
    def advertise_default_route(self) -> bool: ...
    @property
    def router_discovery_behavior(self) -> NlRouterDiscoveryBehavior | int: ...
    @property
    def dad_transmits(self) -> int: ...
    @property
    def base_reachable_time(self) -> int: ...
    @property
    def retransmit_time(self) -> int: ...
    @property
    def path_mtu_discovery_timeout(self) -> int: ...
    @property
    def link_local_address_behavior(self) -> NlLinkLocalAddressBehavior | int: ...
    @property
    def link_local_address_timeout(self) -> int: ...
    @property
    def zone_indices(self) -> tuple[int, ...]: ...
    @property
    def site_prefix_length(self) -> int: ...
    @property
    def metric(self) -> int: ...
    @property
    def nl_mtu(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    @property
    def supports_wake_up_patterns(self) -> bool: ...
    @property
    def supports_neighbor_discovery(self) -> bool: ...
    @property
    def supports_router_discovery(self) -> bool: ...
    @property
    def reachable_time(self) -> int: ...
    @property
    def transmit_offload(self) -> int: ...
    @property
    def receive_offload(self) -> int: ...
    @property
    def disable_default_routes(self) -> bool: ...

# MIB_UNICASTIPADDRESS_ROW: one unicast address of an interface.
@final
class MibUnicastIpAddressRow:
    _fields: ClassVar[tuple[str, ...]]
    @property
    def _identity(self) -> bytes: ...
    def __init__(
        self,
        *,
        address: _IPAddress | str | None = ...,
        interface_luid: int = ...,
        interface_index: int = ...,
        prefix_origin: int = ...,
        suffix_origin: int = ...,
        valid_lifetime: int = ...,
        preferred_lifetime: int = ...,
        on_link_prefix_length: int = ...,
        skip_as_source: bool = ...,
        dad_state: int = ...,
        scope_id: int = ...,
        creation_time_stamp: int = ...,
    ) -> None: ...
    def _replace(
        self,
        *,
        address: _IPAddress | str | None = ...,
        interface_luid: int = ...,
        interface_index: int = ...,
        prefix_origin: int = ...,
        suffix_origin: int = ...,
        valid_lifetime: int = ...,
        preferred_lifetime: int = ...,
        on_link_prefix_length: int = ...,
        skip_as_source: bool = ...,
        dad_state: int = ...,
        scope_id: int = ...,
        creation_time_stamp: int = ...,
    ) -> Self: ...
    def _asdict(self) -> dict[str, Any]: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def address(self) -> _IPAddress: ...
    @property
    def interface_luid(self) -> int: ...
    @property
    def interface_index(self) -> int: ...
    @property
    def prefix_origin(self) -> NlPrefixOrigin | int: ...
    @property
    def suffix_origin(self) -> NlSuffixOrigin | int: ...
    @property
    def valid_lifetime(self) -> int: ...
    @property
    def preferred_lifetime(self) -> int: ...
    @property
    def on_link_prefix_length(self) -> int: ...
    @property
    def skip_as_source(self) -> bool: ...
    @property
    def dad_state(self) -> NlDadState | int: ...
    @property
    def scope_id(self) -> int: ...
    @property
    def creation_time_stamp(self) -> int: ...

# MIB_IPFORWARD_ROW2: one route (one next hop of a multipath route).
@final
class MibIpForwardRow2:
    _fields: ClassVar[tuple[str, ...]]
    @property
    def _identity(self) -> bytes: ...
    def __init__(
        self,
        *,
        interface_luid: int = ...,
        interface_index: int = ...,
        destination_prefix: _IPNetwork | str | None = ...,
        next_hop: _IPAddress | str | None = ...,
        site_prefix_length: int = ...,
        valid_lifetime: int = ...,
        preferred_lifetime: int = ...,
        metric: int = ...,
        protocol: int = ...,
        loopback: bool = ...,
        autoconfigure_address: bool = ...,
        publish: bool = ...,
        immortal: bool = ...,
        age: int = ...,
        origin: int = ...,
    ) -> None: ...
    def _replace(
        self,
        *,
        interface_luid: int = ...,
        interface_index: int = ...,
        destination_prefix: _IPNetwork | str | None = ...,
        next_hop: _IPAddress | str | None = ...,
        site_prefix_length: int = ...,
        valid_lifetime: int = ...,
        preferred_lifetime: int = ...,
        metric: int = ...,
        protocol: int = ...,
        loopback: bool = ...,
        autoconfigure_address: bool = ...,
        publish: bool = ...,
        immortal: bool = ...,
        age: int = ...,
        origin: int = ...,
    ) -> Self: ...
    def _asdict(self) -> dict[str, Any]: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def interface_luid(self) -> int: ...
    @property
    def interface_index(self) -> int: ...
    @property
    def destination_prefix(self) -> _IPNetwork: ...
    @property
    def next_hop(self) -> _IPAddress: ...
    @property
    def site_prefix_length(self) -> int: ...
    @property
    def valid_lifetime(self) -> int: ...
    @property
    def preferred_lifetime(self) -> int: ...
    @property
    def metric(self) -> int: ...
    @property
    def protocol(self) -> NlRouteProtocol | int: ...
    @property
    def loopback(self) -> bool: ...
    @property
    def autoconfigure_address(self) -> bool: ...
    @property
    def publish(self) -> bool: ...
    @property
    def immortal(self) -> bool: ...
    @property
    def age(self) -> int: ...
    @property
    def origin(self) -> NlRouteOrigin | int: ...

MIB_IPINTERFACE_ROW: TypeAlias = MibIpInterfaceRow
MIB_UNICASTIPADDRESS_ROW: TypeAlias = MibUnicastIpAddressRow
MIB_IPFORWARD_ROW2: TypeAlias = MibIpForwardRow2

# ---------------------------------------------------------------- handles

# One registration of a notify_* call; cancel it, or use it as a context manager.
@final
class NotificationHandle:
    @property
    def active(self) -> bool: ...  # False once cancelled, or once a stable-table callback has run
    @property
    def kind(self) -> Literal["interface", "address", "route", "stable", "teredo"]: ...
    @property
    def family(self) -> socket.AddressFamily | None: ...  # None for Teredo
    def cancel(self) -> None: ...  # idempotent, unlike cancel_mib_change_notify2
    if sys.platform == "linux":
        # private: netnotify.watch's consumer reads on its own thread, or its event loop does
        def _read_here(self) -> bool: ...
        def _poke_here(self) -> None: ...
        def _lend(self, epfd: int, /) -> bool: ...
        def _lent_read(self, give_back: bool, /) -> bool: ...
        def _lend_end(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

# ---------------------------------------------------------------- callbacks
# Callbacks are called with positional arguments; their return value is ignored.

_InterfaceCallback: TypeAlias = Callable[[_T, MibIpInterfaceRow | None, MibNotificationType], object]
_AddressCallback: TypeAlias = Callable[[_T, MibUnicastIpAddressRow | None, MibNotificationType], object]
_RouteCallback: TypeAlias = Callable[[_T, MibIpForwardRow2 | None, MibNotificationType], object]
_StableCallback: TypeAlias = Callable[[_T, list[MibUnicastIpAddressRow]], object]
_TeredoCallback: TypeAlias = Callable[[_T, int, MibNotificationType], object]

# ---------------------------------------------------------------- notifications

@overload
def notify_ip_interface_change(
    family: int,
    callback: _InterfaceCallback[None],
    caller_context: None = None,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_ip_interface_change(
    family: int,
    callback: _InterfaceCallback[_T],
    caller_context: _T,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_unicast_ip_address_change(
    family: int,
    callback: _AddressCallback[None],
    caller_context: None = None,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_unicast_ip_address_change(
    family: int,
    callback: _AddressCallback[_T],
    caller_context: _T,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_route_change2(
    family: int,
    callback: _RouteCallback[None],
    caller_context: None = None,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_route_change2(
    family: int,
    callback: _RouteCallback[_T],
    caller_context: _T,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_stable_unicast_ip_address_table(
    family: int,
    callback: _StableCallback[None],
    caller_context: None = None,
) -> list[MibUnicastIpAddressRow] | NotificationHandle: ...
@overload
def notify_stable_unicast_ip_address_table(
    family: int,
    callback: _StableCallback[_T],
    caller_context: _T,
) -> list[MibUnicastIpAddressRow] | NotificationHandle: ...
@overload
def notify_teredo_port_change(
    callback: _TeredoCallback[None],
    caller_context: None = None,
    initial_notification: bool = False,
) -> NotificationHandle: ...
@overload
def notify_teredo_port_change(
    callback: _TeredoCallback[_T],
    caller_context: _T,
    initial_notification: bool = False,
) -> NotificationHandle: ...
def get_teredo_port() -> int: ...
def cancel_mib_change_notify2(handle: NotificationHandle, /) -> None: ...
def _shutdown() -> None: ...  # the atexit hook: cancels every live registration

# ---------------------------------------------------------------- entries and tables

def get_ip_interface_entry(row: MibIpInterfaceRow, /) -> MibIpInterfaceRow: ...
def get_unicast_ip_address_entry(row: MibUnicastIpAddressRow, /) -> MibUnicastIpAddressRow: ...
def get_ip_forward_entry2(row: MibIpForwardRow2, /) -> MibIpForwardRow2: ...
def get_ip_interface_table(family: int, /) -> list[MibIpInterfaceRow]: ...
def get_unicast_ip_address_table(family: int, /) -> list[MibUnicastIpAddressRow]: ...
def get_ip_forward_table2(family: int, /) -> list[MibIpForwardRow2]: ...
def _report_exception(exc: BaseException, obj: object, /) -> None: ...

if sys.platform == "linux":
    @final
    class _PlainSink:
        def __init__(
            self,
            watcher: object,
            classes: dict[Any, type],
            changes: tuple[object, object, object],
            only_lifetimes_differ: Callable[[Any, Any], bool],
            ignore_lifetimes: bool,
        ) -> None: ...
        def __call__(self, kind: Any, row: Any, notification_type: int, /) -> None: ...
        def take(self) -> Any: ...

    @final
    class _Doorbell:
        def __init__(self, semaphore: bool = False) -> None: ...
        def ring(self, count: int = 1, /) -> None: ...
        def take(self) -> int: ...
        def wait(self, timeout_ms: int | None = None, /) -> int: ...
        def fileno(self) -> int: ...
        def close(self) -> None: ...

# ---------------------------------------------------------------- ConvertInterface*

def convert_interface_luid_to_index(luid: int, /) -> int: ...
def convert_interface_index_to_luid(index: int, /) -> int: ...
def convert_interface_luid_to_name(luid: int, /) -> str: ...
def convert_interface_name_to_luid(name: str, /) -> int: ...
