"""The netnotify command line: ``netnotify watch [-4|-6]`` prints network changes as they happen."""

import argparse
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address

from . import (
    MibIpForwardRow2,
    MibIpInterfaceRow,
    MibNotificationType,
    MibUnicastIpAddressRow,
    NetioError,
    NlDadState,
    notify_ip_interface_change,
    notify_route_change2,
    notify_unicast_ip_address_change,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C

ACTIONS = {
    MibNotificationType.ADD_INSTANCE: "add",
    MibNotificationType.PARAMETER_NOTIFICATION: "change",
    MibNotificationType.DELETE_INSTANCE: "delete",
    MibNotificationType.INITIAL_NOTIFICATION: "initial",
}
FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
POLL_SECONDS = 0.5  # how often the main thread wakes, so that Ctrl-C is seen promptly everywhere

EPILOG = """\
output, one line per event, columns separated by blanks:
  TIME          KIND       ACTION  INTERFACE      DETAILS
  12:00:01.234  interface  change  eth0[2]        ipv4 mtu 1500 connected
  12:00:01.240  address    add     eth0[2]        192.0.2.7/24 tentative
  12:00:01.251  route      add     eth0[2]        0.0.0.0/0 via 192.0.2.1 metric 100

  ACTION is add, change or delete. INTERFACE is the name and [index]; the name is "?" when the interface no
  longer exists (after a delete). Interface DETAILS: family, MTU, connected or disconnected. Address DETAILS:
  address/prefix length and duplicate-address-detection state. Route DETAILS: prefix, "via" the next hop
  unless the route is on-link, metric.

exit status:
  0    stopped because the output was closed (e.g. piped into head)
  1    the notifications could not be registered
  2    bad arguments
  130  interrupted by Ctrl-C
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netnotify",
        description="Tell when the OS network changes (interfaces, addresses, routes).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    watch = commands.add_parser(
        "watch",
        help="print interface, address and route changes as they happen, until Ctrl-C",
        description="Print interface, address and route changes as they happen, until Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    family = watch.add_mutually_exclusive_group()
    family.add_argument(
        "-4",
        dest="family",
        action="store_const",
        const=socket.AF_INET,
        default=socket.AF_UNSPEC,
        help="IPv4 only",
    )
    family.add_argument("-6", dest="family", action="store_const", const=socket.AF_INET6, help="IPv6 only")
    return parser


# ---------------------------------------------------------------- formatting


# Names seen so far: the lines about a deleted interface come after its name is gone.
_names: dict[int, str] = {}


def interface_column(index: int) -> str:
    try:
        name = _names[index] = socket.if_indextoname(index)
    except OSError:
        name = _names.get(index, "?")
    return f"{name}[{index}]"


def format_line(kind: str, notification_type: MibNotificationType, index: int, details: str) -> str:
    now = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    action = ACTIONS.get(notification_type, str(int(notification_type)))
    return f"{now}  {kind:<9}  {action:<6}  {interface_column(index):<13}  {details}"


def without_scope(address: IPv4Address | IPv6Address) -> str:
    # The interface column already names the zone: "fe80::1", not "fe80::1%2".
    return str(address).partition("%")[0]


def interface_details(row: MibIpInterfaceRow) -> str:
    family = FAMILIES.get(row.family, str(int(row.family)))
    state = "connected" if row.connected else "disconnected"
    return f"{family} mtu {row.nl_mtu} {state}"


def address_details(row: MibUnicastIpAddressRow) -> str:
    dad = row.dad_state
    state = dad.name.lower() if isinstance(dad, NlDadState) else f"dad-state-{int(dad)}"
    return f"{without_scope(row.address)}/{row.on_link_prefix_length} {state}"


def route_details(row: MibIpForwardRow2) -> str:
    via = "" if row.next_hop.is_unspecified else f" via {without_scope(row.next_hop)}"
    return f"{row.destination_prefix}{via} metric {row.metric}"


# ---------------------------------------------------------------- watching


class Printer:
    """Writes one line per event from the callback threads; notices when stdout is closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def write(self, line: str) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):  # ValueError: stdout was closed under us
                self.closed.set()

    def on_interface(self, _: None, row: MibIpInterfaceRow | None, kind: MibNotificationType) -> None:
        if row is not None:
            self.write(format_line("interface", kind, row.interface_index, interface_details(row)))

    def on_address(self, _: None, row: MibUnicastIpAddressRow | None, kind: MibNotificationType) -> None:
        if row is not None:
            self.write(format_line("address", kind, row.interface_index, address_details(row)))

    def on_route(self, _: None, row: MibIpForwardRow2 | None, kind: MibNotificationType) -> None:
        if row is not None:
            self.write(format_line("route", kind, row.interface_index, route_details(row)))


def silence_stdout() -> None:
    # After the reader went away, the interpreter's final flush of stdout would fail and print an error.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def watch(family: int) -> int:
    printer = Printer()
    with contextlib.ExitStack() as handles:  # leaving it cancels every registration
        try:
            handles.enter_context(notify_ip_interface_change(family, printer.on_interface))
            handles.enter_context(notify_unicast_ip_address_change(family, printer.on_address))
            handles.enter_context(notify_route_change2(family, printer.on_route))
        except NetioError as err:
            print(f"netnotify: error: cannot watch the network: {err}", file=sys.stderr)
            return EXIT_ERROR
        while not printer.closed.wait(POLL_SECONDS):
            pass
    silence_stdout()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        family: int = args.family
        return watch(family)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
