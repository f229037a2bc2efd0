"""The enumerations of netioapi, as ``IntEnum``s.

The C extension imports this module by name at initialisation and converts the values it reports into
these classes (a value with no member stays a plain ``int``), so the class and member names here are part of
its ABI.
"""

from enum import IntEnum

__all__ = [
    "MibNotificationType",
    "NlDadState",
    "NlLinkLocalAddressBehavior",
    "NlPrefixOrigin",
    "NlRouteOrigin",
    "NlRouteProtocol",
    "NlRouterDiscoveryBehavior",
    "NlSuffixOrigin",
]


class MibNotificationType(IntEnum):
    """MIB_NOTIFICATION_TYPE: why a change callback was called."""

    PARAMETER_NOTIFICATION = 0
    ADD_INSTANCE = 1
    DELETE_INSTANCE = 2
    INITIAL_NOTIFICATION = 3


class NlDadState(IntEnum):
    """NL_DAD_STATE: duplicate address detection state of a unicast address."""

    INVALID = 0
    TENTATIVE = 1
    DUPLICATE = 2
    DEPRECATED = 3
    PREFERRED = 4


class NlPrefixOrigin(IntEnum):
    """NL_PREFIX_ORIGIN: where the prefix of a unicast address came from."""

    OTHER = 0
    MANUAL = 1
    WELL_KNOWN = 2
    DHCP = 3
    ROUTER_ADVERTISEMENT = 4
    UNCHANGED = 16


class NlSuffixOrigin(IntEnum):
    """NL_SUFFIX_ORIGIN: where the interface identifier (suffix) of a unicast address came from."""

    OTHER = 0
    MANUAL = 1
    WELL_KNOWN = 2
    DHCP = 3
    LINK_LAYER_ADDRESS = 4
    RANDOM = 5
    UNCHANGED = 16


class NlRouteProtocol(IntEnum):
    """NL_ROUTE_PROTOCOL: the routing protocol (MIB_IPPROTO_*) that installed a route."""

    OTHER = 1
    LOCAL = 2
    NETMGMT = 3
    ICMP = 4
    EGP = 5
    GGP = 6
    HELLO = 7
    RIP = 8
    IS_IS = 9
    ES_IS = 10
    CISCO = 11
    BBN = 12
    OSPF = 13
    BGP = 14
    IDPR = 15
    EIGRP = 16
    DVMRP = 17
    RPL = 18
    DHCP = 19
    NT_AUTOSTATIC = 10002
    NT_STATIC = 10006
    NT_STATIC_NON_DOD = 10007


class NlRouteOrigin(IntEnum):
    """NL_ROUTE_ORIGIN: how a route came to be."""

    MANUAL = 0
    WELL_KNOWN = 1
    DHCP = 2
    ROUTER_ADVERTISEMENT = 3
    SIX_TO_FOUR = 4


class NlRouterDiscoveryBehavior(IntEnum):
    """NL_ROUTER_DISCOVERY_BEHAVIOR: whether an interface takes part in router discovery."""

    DISABLED = 0
    ENABLED = 1
    DHCP = 2
    UNCHANGED = -1


class NlLinkLocalAddressBehavior(IntEnum):
    """NL_LINK_LOCAL_ADDRESS_BEHAVIOR: when an interface configures a link-local address."""

    ALWAYS_OFF = 0
    DELAYED = 1
    ALWAYS_ON = 2
    UNCHANGED = -1
