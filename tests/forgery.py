"""Forged rtnetlink messages: a user-space sender imitates the kernel, netnotify must not believe it.

Used by tests/test_forged.py in two ways: imported, the scenario runs in the test's own network namespace
as root; run as a script (`python forgery.py --unprivileged`), it first drops to uid/gid 65534 and creates
a user namespace plus a network namespace, the situation of a rootless container, and runs the same
scenario there. The script prints one JSON line (the scenario's summary) and exits 0, or exits 1 with a
traceback, or exits SKIP_EXIT with the reason when this machine cannot create that namespace.

What the kernel allows (net/netlink/af_netlink.c, netlink_sendmsg): a message addressed to another socket
(a port id, "unicast") or to a multicast group needs CAP_NET_ADMIN over the network namespace's owning user
namespace, since NETLINK_ROUTE does not set NL_CFG_F_NONROOT_SEND; without it sendto() fails with EPERM. With
it, both work: the forged message lands in the receive queue of the target socket, or of every socket of the
namespace subscribed to the group, exactly like a notification, except that its source address (nl_pid) is
the sender's port id. Port id 0 is the kernel's and no user socket can bind it; the message header
(nlmsg_pid, nlmsg_seq) is whatever the sender writes. A listener that does not check the source address
cannot tell a forgery from the kernel's notification: the naive listener here shows it.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # nettest is a module beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import nettest
from nettest import ADD, DELETE, PARAMETER, Collector, Match, NetNS, Registrations, wait_until

import netnotify

SKIP_EXIT = 77

# ---------------------------------------------------------------- rtnetlink, as far as the forgery needs it

# Linux's values, spelled out so that this module imports (and type-checks) on every platform.
AF_NETLINK, NETLINK_ROUTE, SOCK_CLOEXEC = 16, 0, 0o2000000
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP = 0x1, 0x2, 0x300
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
IFLA_IFNAME, IFLA_MTU = 3, 4
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
IFF_UP, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x40, 0x10000
RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE = (
    1,
    5,
    7,
    9,
    11,
)
GROUPS = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE]

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
RTATTR = struct.Struct("=HH")  # len, type
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
FIXED = {
    RTM_NEWLINK: IFINFOMSG.size,
    RTM_NEWADDR: IFADDRMSG.size,
    RTM_NEWROUTE: RTMSG.size,
    RTM_DELROUTE: RTMSG.size,
}

NAIVE_PORT = 0x4E4E0001  # the naive listener binds this port id: a known address to forge to


def _align(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class Message:
    """One rtnetlink message: header fields, the fixed family header and the attributes (type, payload)."""

    type: int
    fixed: bytes
    attrs: list[tuple[int, bytes]]
    flags: int = 0
    seq: int = 0
    pid: int = 0

    def encode(self) -> bytes:
        body = bytearray(self.fixed)
        for kind, data in self.attrs:
            body += RTATTR.pack(RTATTR.size + len(data), kind) + data
            body += bytes(_align(len(body)) - len(body))
        return NLMSGHDR.pack(NLMSGHDR.size + len(body), self.type, self.flags, self.seq, self.pid) + body

    def attr(self, kind: int) -> bytes | None:
        return next((data for k, data in self.attrs if k == kind), None)

    def with_attr(self, kind: int, data: bytes) -> Message:
        attrs = [(k, data if k == kind else d) for k, d in self.attrs]
        return Message(self.type, self.fixed, attrs, self.flags, self.seq, self.pid)

    def as_notification(self, msg_type: int | None = None, **header: int) -> Message:
        """The same content with the header of a notification (or of a dump reply, given flags/seq/pid)."""
        return Message(
            self.type if msg_type is None else msg_type,
            self.fixed,
            list(self.attrs),
            header.get("flags", 0),
            header.get("seq", 0),
            header.get("pid", 0),
        )


def decode(datagram: bytes) -> list[Message]:
    """Every message of a datagram (no check of anything: this is how a naive listener reads)."""
    messages: list[Message] = []
    offset = 0
    while offset + NLMSGHDR.size <= len(datagram):
        length, kind, flags, seq, pid = NLMSGHDR.unpack_from(datagram, offset)
        if length < NLMSGHDR.size or offset + length > len(datagram):
            break
        body = datagram[offset + NLMSGHDR.size : offset + length]
        fixed_size = FIXED.get(kind & ~1 if kind in (RTM_NEWLINK + 1, RTM_NEWADDR + 1) else kind, 0)
        attrs: list[tuple[int, bytes]] = []
        at = _align(fixed_size)
        while at + RTATTR.size <= len(body):
            attr_len, attr_type = RTATTR.unpack_from(body, at)
            if attr_len < RTATTR.size:
                break
            attrs.append((attr_type, bytes(body[at + RTATTR.size : at + attr_len])))
            at += _align(attr_len)
        messages.append(Message(kind, bytes(body[:fixed_size]), attrs, flags, seq, pid))
        offset += _align(length)
    return messages


def describe(message: Message) -> tuple[object, ...]:
    """What a listener would act on: the object and the change, decoded without any check."""
    if message.type in (RTM_NEWROUTE, RTM_DELROUTE):
        family, dst_len, _, _, table, protocol, _, route_type, _ = RTMSG.unpack(message.fixed)
        dst, gateway = message.attr(RTA_DST), message.attr(RTA_GATEWAY)
        table_attr, oif = message.attr(RTA_TABLE), message.attr(RTA_OIF)
        return (
            "route",
            message.type,
            ipaddress.ip_network((dst or b"", dst_len)) if dst else None,
            ipaddress.ip_address(gateway) if gateway else None,
            struct.unpack("=I", oif)[0] if oif else None,
            struct.unpack("=I", table_attr)[0] if table_attr else table,
            protocol,
            route_type,
            family,
        )
    if message.type == RTM_NEWADDR:
        family, prefixlen, _, _, index = IFADDRMSG.unpack(message.fixed)
        address = message.attr(IFA_LOCAL) or message.attr(IFA_ADDRESS) or b""
        return ("address", message.type, ipaddress.ip_interface((address, prefixlen)), index)
    if message.type == RTM_NEWLINK:
        _, _, index, flags, _ = IFINFOMSG.unpack(message.fixed)
        name, mtu = message.attr(IFLA_IFNAME) or b"", message.attr(IFLA_MTU)
        return (
            "link",
            message.type,
            index,
            name.rstrip(b"\0").decode(),
            struct.unpack("=I", mtu)[0] if mtu else None,
            bool(flags & IFF_UP),
        )
    return ("other", message.type)


def open_netlink(port: int = 0, groups: int = 0) -> socket.socket:
    sock = socket.socket(AF_NETLINK, socket.SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)
    sock.bind((port, groups))
    return sock


def group_mask(groups: list[int]) -> int:
    mask = 0
    for group in groups:
        mask |= 1 << (group - 1)
    return mask


def dump(sock: socket.socket, msg_type: int, fixed: bytes) -> list[Message]:
    """A dump request of our own, answered by the kernel: the templates of the forgeries."""
    request = Message(msg_type, fixed, [], NLM_F_REQUEST | NLM_F_DUMP, seq=77)
    sock.sendto(request.encode(), (0, 0))
    replies: list[Message] = []
    while True:
        data, (sender, _) = sock.recvfrom(1 << 16)
        assert sender == 0, f"a dump reply from port {sender}, not the kernel"
        for message in decode(data):
            if message.type == NLMSG_DONE:
                return replies
            assert message.type != NLMSG_ERROR, "the kernel refused the dump request"
            replies.append(message)


# ---------------------------------------------------------------- netnotify's sockets


@dataclass(frozen=True)
class NetlinkSocket:
    inode: int
    port: int
    groups: int  # the first 32 multicast groups (the kernel's /proc column), 0 for a dump socket
    rmem: int  # bytes queued for reading
    drops: int


def process_socket_inodes() -> set[int]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def netlink_sockets() -> dict[int, NetlinkSocket]:
    """The NETLINK_ROUTE sockets of the calling thread's network namespace, by inode."""
    with open("/proc/thread-self/net/netlink") as file:
        header, *rows = (line.split() for line in file)
    col = {name: header.index(name) for name in ("Eth", "Pid", "Groups", "Rmem", "Drops", "Inode")}
    found = {}
    for row in rows:
        if int(row[col["Eth"]]) == NETLINK_ROUTE:
            inode = int(row[col["Inode"]])
            found[inode] = NetlinkSocket(
                inode,
                int(row[col["Pid"]]),
                int(row[col["Groups"]], 16),
                int(row[col["Rmem"]]),
                int(row[col["Drops"]]),
            )
    return found


@contextmanager
def new_sockets(into: list[NetlinkSocket]) -> Iterator[None]:
    """Collects the NETLINK_ROUTE sockets this process opened (and kept) inside the block."""
    before = process_socket_inodes()
    yield
    mine = process_socket_inodes() - before
    into += [sock for inode, sock in netlink_sockets().items() if inode in mine]


def current(sock: NetlinkSocket) -> NetlinkSocket:
    return netlink_sockets()[sock.inode]


# ---------------------------------------------------------------- the scenario


V4_ROUTE = ipaddress.ip_network("10.55.0.0/24")  # exists: template, and target of a forged delete
V4_FORGED = ipaddress.ip_network("10.66.0.0/24")  # forged add, then really added (positive control)
V6_ROUTE = ipaddress.ip_network("2001:db8:55::/64")
V6_FORGED = ipaddress.ip_network("2001:db8:66::/64")
DUMP_FORGED = ipaddress.ip_network("10.67.0.0/24")  # only ever forged, as a dump reply
FLOOD_REAL = ipaddress.ip_network("10.68.0.0/24")  # really added while a forged flood overflows a socket
ADDRESS = ipaddress.ip_interface("10.9.0.1/24")
ADDRESS_FORGED = ipaddress.ip_interface("10.9.0.77/24")
FAKE_INDEX, DUMP_FAKE_INDEX = 4242, 4243
FORGED_MTU = 1400
SEQUENCES = range(1, 17)  # the dump sequence numbers a forger would guess (netnotify counts from 1)


@dataclass
class Report:
    """What the scenario saw; printed as JSON by the script, checked again by the test."""

    variant: str
    unicast_targets: int = 0
    unicast_sent: int = 0  # sendto() calls that returned the full length
    multicast_groups: list[int] = field(default_factory=list)
    naive_received: int = 0  # forged messages the naive listener decoded
    naive_kinds: list[str] = field(default_factory=list)
    dump_targets: int = 0
    dump_replies_sent: int = 0
    dump_sockets_drained: int = 0  # dump sockets that read (and ignored) the forged replies
    flood_drops: int = 0
    events_after_real_changes: int = 0
    refused_without_capability: list[str] = field(default_factory=list)


class Watched:
    """The registrations under attack: the three low-level kinds and a watch() watcher, all AF_UNSPEC."""

    def __init__(self, regs: Registrations) -> None:
        self.sockets: list[NetlinkSocket] = []
        with new_sockets(self.sockets):
            self.interface = regs.watch("interface")
            self.address = regs.watch("address")
            self.route = regs.watch("route")
            self.events: list[Any] = []
            self.watcher = netnotify.watch(callback=self.events.append)

    @property
    def collectors(self) -> dict[str, Collector]:
        return {"interface": self.interface, "address": self.address, "route": self.route}

    def seen(self) -> str:
        parts = [f"{name}:\n{collector.describe()}" for name, collector in self.collectors.items()]
        return "\n".join([*parts, "watcher:", *(f"  {event}" for event in list(self.events))])

    def total(self) -> int:
        return sum(len(c.events) for c in self.collectors.values()) + len(self.events)


def _send(sender: socket.socket, message: Message, address: tuple[int, int]) -> int:
    data = message.encode()
    sent = sender.sendto(data, address)
    assert sent == len(data), f"sendto {address} sent {sent} of {len(data)} bytes"
    return sent


def _watcher_has(
    events: list[Any], kind: type[Any], change: netnotify.Change, members: dict[str, Any]
) -> bool:
    return any(
        isinstance(e, kind) and e.change == change and all(getattr(e.row, k) == v for k, v in members.items())
        for e in list(events)
    )


def retarget_route(template: Message, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Message:
    return template.with_attr(RTA_DST, network.network_address.packed)


def run_scenario(ns: NetNS, variant: str) -> Report:
    report = Report(variant)
    # The network: v0 with an IPv4 and an IPv6 address and one route of each family.
    lan = nettest.Lan.create(ns)
    ns.ip(f"route add {V4_ROUTE} via {lan.gateway4} dev v0 metric 7")
    ns.ip(f"route add {V6_ROUTE} via {lan.gateway6} dev v0 metric 7")

    forger = open_netlink()
    naive = open_netlink(NAIVE_PORT, group_mask(GROUPS))

    # Templates: the kernel's own messages for these objects, from a dump; the forgeries change a field.
    link_v0 = next(
        m for m in dump(forger, RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0)) if describe(m)[2] == lan.index
    )
    addr_v4 = next(
        m
        for m in dump(forger, RTM_GETADDR, IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0))
        if describe(m)[2] == ADDRESS
    )
    routes = dump(forger, RTM_GETROUTE, RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0))
    route_v4 = next(m for m in routes if describe(m)[2] == V4_ROUTE)
    route_v6 = next(m for m in routes if describe(m)[2] == V6_ROUTE)

    ifi_family, ifi_type, _, ifi_flags, ifi_change = IFINFOMSG.unpack(link_v0.fixed)
    link_down = IFINFOMSG.pack(
        ifi_family, ifi_type, lan.index, ifi_flags & ~(IFF_UP | IFF_RUNNING), ifi_change
    )
    fake_link = IFINFOMSG.pack(ifi_family, ifi_type, FAKE_INDEX, ifi_flags, ifi_change)
    forged = [
        retarget_route(route_v4, V4_FORGED).as_notification(RTM_NEWROUTE),  # a new route
        retarget_route(route_v6, V6_FORGED).as_notification(RTM_NEWROUTE),
        route_v4.as_notification(RTM_DELROUTE),  # an existing route deleted
        route_v6.as_notification(RTM_DELROUTE),
        link_v0.with_attr(IFLA_MTU, struct.pack("=I", FORGED_MTU)).as_notification(),  # an MTU change
        Message(RTM_NEWLINK, link_down, link_v0.attrs).as_notification(),  # the link went down
        Message(RTM_NEWLINK, fake_link, link_v0.attrs)  # a new interface
        .with_attr(IFLA_IFNAME, b"forged0\0")
        .as_notification(),
        addr_v4.with_attr(IFA_LOCAL, ADDRESS_FORGED.ip.packed)  # a new address
        .with_attr(IFA_ADDRESS, ADDRESS_FORGED.ip.packed)
        .as_notification(),
    ]

    regs = Registrations()
    watched = Watched(regs)
    try:
        notification_sockets = [s for s in watched.sockets if s.groups]
        dump_sockets = [s for s in watched.sockets if not s.groups]
        # Each registration (3 low-level + 3 of the watcher) has one subscribed and one dump socket.
        assert len(notification_sockets) == 6, watched.sockets
        assert len(dump_sockets) == 6, watched.sockets

        # 1. Forged notifications: unicast to each subscribed socket and to the naive listener, and
        #    multicast to the groups (which reaches every subscribed socket of the namespace again).
        for message in forged:
            for port in [*(s.port for s in notification_sockets), NAIVE_PORT]:
                report.unicast_sent += _send(forger, message, (port, 0)) > 0
        report.unicast_targets = len(notification_sockets)
        for group, message in [
            (RTNLGRP_IPV4_ROUTE, forged[0]),
            (RTNLGRP_IPV6_ROUTE, forged[1]),
            (RTNLGRP_IPV4_ROUTE, forged[2]),
            (RTNLGRP_IPV6_ROUTE, forged[3]),
            (RTNLGRP_LINK, forged[4]),
            (RTNLGRP_LINK, forged[5]),
            (RTNLGRP_LINK, forged[6]),
            (RTNLGRP_IPV4_IFADDR, forged[7]),
        ]:
            _send(forger, message, (0, 1 << (group - 1)))
            report.multicast_groups.append(group)

        # The naive listener (no sender check) takes every forgery for the kernel's word: twice each,
        # unicast and multicast. This is what netnotify would do without its check: the test can fail.
        naive.settimeout(5)
        wanted = [describe(m) for m in forged]
        received: list[tuple[object, ...]] = []
        while len(received) < 2 * len(forged):
            data, (sender, _) = naive.recvfrom(1 << 16)
            assert sender == forger.getsockname()[0], f"unexpected sender {sender}"
            received += [describe(m) for m in decode(data)]
        assert sorted(map(repr, received)) == sorted(map(repr, wanted * 2)), (received, wanted)
        report.naive_received = len(received)
        report.naive_kinds = sorted({str(item[0]) for item in received})

        # netnotify believes none of it. Every forged datagram is queued (sendto returned); once the
        # dispatcher has read them all (the queues are empty, nothing left unread), a forgery it believed
        # would be reported within SETTLE.
        wait_until(lambda: all(current(s).rmem == 0 for s in notification_sockets), 5.0, "empty queues")
        time.sleep(nettest.SETTLE)
        assert watched.total() == 0, "forged messages were reported:\n" + watched.seen()

        # 2. Positive control: the same changes, made for real, are reported (once: a believed forgery
        #    would have made the real add a repeat of a known row, and the real delete a second one).
        ns.ip(f"route add {V4_FORGED} via {lan.gateway4} dev v0 metric 7")
        ns.ip(f"route add {V6_FORGED} via {lan.gateway6} dev v0 metric 7")
        ns.ip(f"route del {V4_ROUTE}")
        ns.ip(f"addr add {ADDRESS_FORGED} dev v0")
        ns.ip(f"link set v0 mtu {FORGED_MTU}")
        route, address, interface = watched.route, watched.address, watched.interface
        for prefix in (V4_FORGED, V6_FORGED):
            route.wait_for(Match(ADD, destination_prefix=prefix))
        route.wait_for(Match(DELETE, destination_prefix=V4_ROUTE))
        address.wait_for(Match(ADD, address=ADDRESS_FORGED.ip, interface_index=lan.index))
        interface.wait_for(Match(PARAMETER, interface_index=lan.index, nl_mtu=FORGED_MTU))
        watcher_expects: list[tuple[type[Any], netnotify.Change, dict[str, Any]]] = [
            (netnotify.RouteEvent, netnotify.Change.ADD, {"destination_prefix": V4_FORGED}),
            (netnotify.RouteEvent, netnotify.Change.DELETE, {"destination_prefix": V4_ROUTE}),
            (netnotify.AddressEvent, netnotify.Change.ADD, {"address": ADDRESS_FORGED.ip}),
        ]
        wait_until(
            lambda: all(_watcher_has(watched.events, k, c, m) for k, c, m in watcher_expects),
            5.0,
            "the watcher's events of the real changes",
        )
        time.sleep(nettest.SETTLE)
        for prefix in (V4_FORGED, V6_FORGED, V4_ROUTE):
            assert len(route.matching(Match(destination_prefix=prefix))) == 1, route.describe()
        assert not route.matching(Match(destination_prefix=V6_ROUTE)), route.describe()  # never deleted
        assert len(address.matching(Match(address=ADDRESS_FORGED.ip))) == 1, address.describe()
        assert not interface.matching(Match(interface_index=FAKE_INDEX)), interface.describe()
        assert not any(getattr(e.row, "interface_index", 0) == FAKE_INDEX for e in watched.events)
        # The kernel's own messages for these changes decode like the forgeries: they were plausible.
        naive.settimeout(0.5)
        real: list[tuple[object, ...]] = []
        try:
            while True:
                data, (sender, _) = naive.recvfrom(1 << 16)
                real += [describe(m) for m in decode(data)] if sender == 0 else []
        except TimeoutError:
            pass
        for forgery in (forged[0], forged[1], forged[2]):
            assert describe(forgery) in real, (describe(forgery), real)
        report.events_after_real_changes = watched.total()

        # 3. Forged dump replies: queued on every dump socket with its own port id in the header and each
        #    sequence number a forger would guess, with a DONE that would end a believed dump early.
        dump_fake = IFINFOMSG.pack(ifi_family, ifi_type, DUMP_FAKE_INDEX, ifi_flags, ifi_change)
        fake_dump_link = Message(RTM_NEWLINK, dump_fake, link_v0.attrs)
        for target in dump_sockets:
            for seq in SEQUENCES:
                header = {"flags": NLM_F_MULTI, "seq": seq, "pid": target.port}
                for message in (
                    fake_dump_link.as_notification(**header),
                    retarget_route(route_v4, DUMP_FORGED).as_notification(**header),
                    Message(NLMSG_DONE, struct.pack("=i", 0), [], NLM_F_MULTI, seq, target.port),
                ):
                    report.dump_replies_sent += _send(forger, message, (target.port, 0)) > 0
        assert all(current(s).rmem > 0 for s in dump_sockets)
        report.dump_targets = len(dump_sockets)
        # An MTU back above IPv6's minimum makes every registration read the links again (docs/api.md).
        ns.ip("link set v0 mtu 1200")
        interface.wait_for(Match(DELETE, interface_index=lan.index, family=socket.AF_INET6))
        ns.ip("link set v0 mtu 1500")
        interface.wait_for(Match(ADD, interface_index=lan.index, family=socket.AF_INET6, nl_mtu=1500))
        wait_until(lambda: all(current(s).rmem == 0 for s in dump_sockets), 5.0, "the re-dumps")
        report.dump_sockets_drained = len(dump_sockets)
        time.sleep(nettest.SETTLE)
        assert not interface.matching(Match(interface_index=DUMP_FAKE_INDEX)), interface.describe()
        assert not route.matching(Match(destination_prefix=DUMP_FORGED)), route.describe()
        assert not any(getattr(e.row, "interface_index", 0) == DUMP_FAKE_INDEX for e in watched.events)

        # 4. A forged flood overflows a small socket (multicast overflow counts against the receiver,
        #    whoever sent it): the repair dumps the table on the dump socket, past more forged replies.
        report.flood_drops = _flood(ns, lan, forger, route_v4)
    finally:
        watched.watcher.close()
        regs.cancel_all()
        naive.close()
        forger.close()
    return report


def _flood(ns: NetNS, lan: nettest.Lan, forger: socket.socket, route_v4: Message) -> int:
    small: list[NetlinkSocket] = []
    regs = Registrations()
    previous = os.environ.get("NETNOTIFY_RCVBUF")
    os.environ["NETNOTIFY_RCVBUF"] = "4096"
    try:
        with new_sockets(small):
            route = regs.watch("route", socket.AF_INET)
    finally:
        if previous is None:
            del os.environ["NETNOTIFY_RCVBUF"]
        else:
            os.environ["NETNOTIFY_RCVBUF"] = previous
    try:
        (notify_sock,) = [s for s in small if s.groups]
        (dump_sock,) = [s for s in small if not s.groups]
        for seq in SEQUENCES:
            header = {"flags": NLM_F_MULTI, "seq": seq, "pid": dump_sock.port}
            forged_route = retarget_route(route_v4, DUMP_FORGED).as_notification(**header)
            _send(forger, forged_route, (dump_sock.port, 0))
            done = Message(NLMSG_DONE, struct.pack("=i", 0), [], NLM_F_MULTI, seq, dump_sock.port)
            _send(forger, done, (dump_sock.port, 0))
        flood = [retarget_route(route_v4, ipaddress.ip_network(f"10.69.{i}.0/24")) for i in range(256)]
        deadline = time.monotonic() + 10
        while current(notify_sock).drops == 0:
            assert time.monotonic() < deadline, "a forged flood of 256 datagrams at a time never overflowed"
            for message in flood:
                _send(forger, message.as_notification(), (0, 1 << (RTNLGRP_IPV4_ROUTE - 1)))
        ns.ip(f"route add {FLOOD_REAL} via {lan.gateway4} dev v0")
        route.wait_for(Match(ADD, destination_prefix=FLOOD_REAL))
        time.sleep(nettest.SETTLE)
        # Only the real change: no forged route, no route deleted by a forged reply or a dump cut short.
        assert len(route.events) == 1, route.describe()
        wait_until(lambda: current(dump_sock).rmem == 0, 5.0, "the repair's dump to read the forged replies")
        return current(notify_sock).drops
    finally:
        regs.cancel_all()


# ---------------------------------------------------------------- the unprivileged variant (a script)

CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
NOBODY = 65534


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except PermissionError:
        return True
    return False


def _become_unprivileged_root() -> list[str]:
    """Drops to uid/gid 65534 (no capabilities), checks that the kernel refuses the forgeries then, and
    creates a user namespace plus a network namespace where this unprivileged user is root."""
    if sys.platform == "linux":  # (mypy checks this module for Windows too)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # setuid cleared it; /proc/self/uid_map needs it
        # Without CAP_NET_ADMIN over this namespace: EPERM for unicast and for multicast.
        refused = []
        with open_netlink() as sender, open_netlink() as target:
            message = Message(RTM_NEWROUTE, RTMSG.pack(2, 24, 0, 0, 254, 4, 0, 1, 0), []).encode()
            if _refused(lambda: sender.sendto(message, (target.getsockname()[0], 0))):
                refused.append("unicast")
            if _refused(lambda: sender.sendto(message, (0, 1 << (RTNLGRP_IPV4_ROUTE - 1)))):
                refused.append("multicast")
        if libc.unshare(CLONE_NEWUSER | nettest.CLONE_NEWNET) != 0:
            errnum = ctypes.get_errno()
            print(f"unshare(CLONE_NEWUSER|CLONE_NEWNET) as uid {NOBODY}: {os.strerror(errnum)}")
            sys.exit(SKIP_EXIT)
        for path, text in (("setgroups", "deny"), ("uid_map", f"0 {NOBODY} 1"), ("gid_map", f"0 {NOBODY} 1")):
            with open(f"/proc/self/{path}", "w") as file:
                file.write(text)
        done = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, check=False)
        if done.returncode != 0:  # e.g. Ubuntu's AppArmor restriction of unprivileged user namespaces
            print(
                f"root of an unprivileged user namespace cannot configure its network: {done.stderr.strip()}"
            )
            sys.exit(SKIP_EXIT)
        return refused
    raise OSError("user namespaces are Linux's")


def main() -> None:
    if sys.argv[1:] != ["--unprivileged"]:
        sys.exit("usage: forgery.py --unprivileged (as root, in a private network namespace)")
    # Everything is imported now: once uid 65534, the interpreter may not read its own library (~root).
    refused = _become_unprivileged_root()
    try:
        report = run_scenario(NetNS(), "unprivileged user in a user namespace + network namespace")
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    report.refused_without_capability = refused
    print(json.dumps(report.__dict__))


if __name__ == "__main__":
    assert threading.active_count() == 1  # unshare(CLONE_NEWUSER) needs a single-threaded process
    main()
