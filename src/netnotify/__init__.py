"""netnotify: tells a program when the OS network changes.

The API mirrors Windows' netioapi notification functions (NotifyIpInterfaceChange,
NotifyUnicastIpAddressChange, NotifyRouteChange2, ...) on every platform; see docs/api.md. On Linux it is
implemented over rtnetlink.
"""

from . import _netnotify
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
from ._errors import (
    AccessDeniedError,
    InvalidHandleError,
    InvalidParameterError,
    NetioError,
    NotFoundError,
    NotSupportedError,
)

__version__ = "0.1.0"

# An extension left over from an older checkout would disagree with the Python side in silent ways:
# check before importing names from it, so that a stale build fails with this message.
_build_version = getattr(_netnotify, "__build_version__", None)
if _build_version != __version__:
    raise ImportError(
        f"netnotify {__version__}: stale build of the C extension {_netnotify.__file__} "
        f"(built as version {_build_version!r}); reinstall netnotify: "
        "pip install --force-reinstall . (or pip install -e . in the source tree)"
    )
del _build_version

from ._netnotify import (  # noqa: E402
    MIB_IPFORWARD_ROW2,
    MIB_IPINTERFACE_ROW,
    MIB_UNICASTIPADDRESS_ROW,
    MibIpForwardRow2,
    MibIpInterfaceRow,
    MibUnicastIpAddressRow,
    NotificationHandle,
    cancel_mib_change_notify2,
    convert_interface_index_to_luid,
    convert_interface_luid_to_index,
    convert_interface_luid_to_name,
    convert_interface_name_to_luid,
    get_ip_forward_entry2,
    get_ip_forward_table2,
    get_ip_interface_entry,
    get_ip_interface_table,
    get_teredo_port,
    get_unicast_ip_address_entry,
    get_unicast_ip_address_table,
    notify_ip_interface_change,
    notify_route_change2,
    notify_stable_unicast_ip_address_table,
    notify_teredo_port_change,
    notify_unicast_ip_address_change,
)
from ._watch import (  # noqa: E402
    AddressEvent,
    Change,
    Event,
    InterfaceEvent,
    Kind,
    Overflow,
    RouteEvent,
    SnapshotComplete,
    StableTableEvent,
    TeredoPortEvent,
    Watcher,
    WatcherClosed,
    watch,
)

__all__ = [
    "MIB_IPFORWARD_ROW2",
    "MIB_IPINTERFACE_ROW",
    "MIB_UNICASTIPADDRESS_ROW",
    "AccessDeniedError",
    "AddressEvent",
    "Change",
    "Event",
    "InterfaceEvent",
    "InvalidHandleError",
    "InvalidParameterError",
    "Kind",
    "MibIpForwardRow2",
    "MibIpInterfaceRow",
    "MibNotificationType",
    "MibUnicastIpAddressRow",
    "NetioError",
    "NlDadState",
    "NlLinkLocalAddressBehavior",
    "NlPrefixOrigin",
    "NlRouteOrigin",
    "NlRouteProtocol",
    "NlRouterDiscoveryBehavior",
    "NlSuffixOrigin",
    "NotFoundError",
    "NotSupportedError",
    "NotificationHandle",
    "Overflow",
    "RouteEvent",
    "SnapshotComplete",
    "StableTableEvent",
    "TeredoPortEvent",
    "Watcher",
    "WatcherClosed",
    "__version__",
    "cancel_mib_change_notify2",
    "convert_interface_index_to_luid",
    "convert_interface_luid_to_index",
    "convert_interface_luid_to_name",
    "convert_interface_name_to_luid",
    "get_ip_forward_entry2",
    "get_ip_forward_table2",
    "get_ip_interface_entry",
    "get_ip_interface_table",
    "get_teredo_port",
    "get_unicast_ip_address_entry",
    "get_unicast_ip_address_table",
    "notify_ip_interface_change",
    "notify_route_change2",
    "notify_stable_unicast_ip_address_table",
    "notify_teredo_port_change",
    "notify_unicast_ip_address_change",
    "watch",
]
