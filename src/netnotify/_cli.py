"""The netnotify command line: ``netnotify watch`` prints network changes as they happen, ``netnotify show``
the current tables; both as aligned text or as JSON, one object per line."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NoReturn, Self, TextIO, TypeAlias, assert_never

from . import __version__
from ._errors import NetioError
from ._json import Row, dumps, event_to_json, row_to_json
from ._netnotify import (
    MibIpForwardRow2,
    MibIpInterfaceRow,
    MibUnicastIpAddressRow,
    get_ip_forward_table2,
    get_ip_interface_table,
    get_unicast_ip_address_table,
)
from ._watch import (
    AddressEvent,
    Event,
    InterfaceEvent,
    Kind,
    Overflow,
    RouteEvent,
    SnapshotComplete,
    StableTableEvent,
    TeredoPortEvent,
    WatcherClosed,
    watch,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C

POLL_SECONDS = 0.25  # how often the main thread wakes, so that Ctrl-C is seen promptly everywhere
INFINITE = 0xFFFFFFFF  # a lifetime that never ends
FAMILIES: dict[int, str] = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}

# What `watch` accepts, singular or plural, and what each means.
KINDS = {
    "interface": Kind.INTERFACE,
    "interfaces": Kind.INTERFACE,
    "address": Kind.ADDRESS,
    "addresses": Kind.ADDRESS,
    "route": Kind.ROUTE,
    "routes": Kind.ROUTE,
    "teredo": Kind.TEREDO,
}
TABLES = {
    "interface": "interfaces",
    "interfaces": "interfaces",
    "address": "addresses",
    "addresses": "addresses",
    "route": "routes",
    "routes": "routes",
}

EXIT_STATUS = f"""\
exit status:
  {EXIT_OK:<3}  done, or stopped because the output was closed (e.g. piped into head)
  {EXIT_ERROR:<3}  the notifications could not be registered or the tables could not be read
  {EXIT_USAGE:<3}  bad arguments
  {EXIT_INTERRUPTED:<3}  interrupted by Ctrl-C
"""

WATCH_EPILOG = f"""\
KIND is interfaces, addresses, routes or teredo (Windows only), singular or plural; several may be given.
The default is interfaces, addresses and routes.

output, one line per event, columns separated by blanks:
  TIME          KIND       CHANGE    INTERFACE      DETAILS
  12:00:01.234  interface  change    eth0[2]        ipv4 mtu 1500 connected
  12:00:01.240  address    add       eth0[2]        192.0.2.7/24 tentative
  12:00:01.251  route      add       eth0[2]        0.0.0.0/0 via 192.0.2.1 metric 100
  12:00:01.260  route      delete    eth0[2]        192.0.2.0/24 metric 100

  CHANGE is add, change or delete, or snapshot for the current rows printed first with --initial; after them
  a line "-- snapshot complete --" marks where the live changes begin. INTERFACE is the name and [index]; the
  name is "?" when it is not known (an interface deleted before netnotify saw its name). Interface DETAILS:
  family, MTU, connected or disconnected. Address DETAILS: address/prefix length and duplicate address
  detection state (tentative, duplicate, deprecated, preferred). Route DETAILS: prefix, "via" the next hop
  unless the route is on-link, metric. Teredo DETAILS: the port. A row that could not be completed (Windows
  passes only its key, and the object was gone when netnotify asked for the rest) ends in "(incomplete row)".

  If the output falls more than 10000 events behind, a line "-- overflow: N changes dropped --" is followed by
  the changes that bring the output back to the current tables and "-- snapshot complete --".

--json prints one JSON object per line instead:
  {{"time": 1763720000.123, "kind": "route", "change": "add", "complete": true, "row": {{...}}}}
  {{"time": 1763720000.124, "event": "snapshot_complete"}}
  {{"time": 1763720000.125, "event": "overflow", "dropped": 12}}
  time is seconds since the epoch; row holds every member of the row (as `show --json` prints it).

{EXIT_STATUS}"""

SHOW_EPILOG = f"""\
TABLE is interfaces, addresses or routes (singular or plural). The rows are sorted by interface index, then
by family, address or prefix.

--json prints one JSON object per row, one per line (`jq -s .` makes them one array): every member of the
row (docs/api.md), with addresses and prefixes as strings (an IPv6 address keeps its scope, "fe80::1%2"),
family as "AF_INET" or "AF_INET6", enumerations as their lower-case name ("preferred", "manual"; a value with
no name stays a number), zone_indices as an array, and interface_name (null when not known).

{EXIT_STATUS}"""


# ---------------------------------------------------------------- arguments


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `prog: error: message (see 'prog --help')`."""

    commands: dict[str, Parser]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def choice(names: dict[str, Any], what: str, listed: str) -> Callable[[str], str]:
    """An argparse type: one of `names`, as given; any other word is a one-line error listing them."""

    def check(word: str) -> str:
        if word not in names:
            raise argparse.ArgumentTypeError(f"invalid {what} {word!r} (choose from {listed})")
        return word

    return check


def add_family_options(parser: argparse.ArgumentParser) -> None:
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "-4",
        dest="family",
        action="store_const",
        const=socket.AF_INET,
        default=socket.AF_UNSPEC,
        help="IPv4 only",
    )
    family.add_argument("-6", dest="family", action="store_const", const=socket.AF_INET6, help="IPv6 only")


def build_parser() -> Parser:
    parser = Parser(
        prog="netnotify",
        description="Tell when the OS network changes (interfaces, addresses, routes), or show the tables.",
    )
    parser.add_argument("--version", action="version", version=f"netnotify {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = commands.choices

    watch_ = commands.add_parser(
        "watch",
        help="print interface, address, route (and Teredo port) changes as they happen, until Ctrl-C",
        description="Print interface, address, route (and Teredo port) changes as they happen, until Ctrl-C.",
        epilog=WATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch_.add_argument(
        "kinds",
        nargs="*",
        metavar="KIND",
        type=choice(KINDS, "kind", "interfaces, addresses, routes, teredo"),
        help="what to watch: interfaces, addresses, routes, teredo (default: interfaces addresses routes)",
    )
    add_family_options(watch_)
    watch_.add_argument(
        "--initial",
        action="store_true",
        help='print the current rows first (change "snapshot"), then "-- snapshot complete --", then changes',
    )
    watch_.add_argument("--json", action="store_true", help="print one JSON object per line")

    show = commands.add_parser(
        "show",
        help="print the current interfaces, addresses or routes",
        description="Print the current interface, address or route table.",
        epilog=SHOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument(
        "table",
        metavar="TABLE",
        type=choice(TABLES, "table", "interfaces, addresses, routes"),
        help="interfaces, addresses or routes",
    )
    add_family_options(show)
    show.add_argument("--json", action="store_true", help="print one JSON object per row, one per line")
    return parser


def kinds_of(words: Sequence[str]) -> list[Kind]:
    """The kinds named (singular or plural), each once, in order; the default when none is named."""
    kinds: list[Kind] = []
    for word in words:
        if KINDS[word] not in kinds:
            kinds.append(KINDS[word])
    return kinds or [Kind.INTERFACE, Kind.ADDRESS, Kind.ROUTE]


# ---------------------------------------------------------------- interface names


class InterfaceNames:
    """Interface names by index; remembers every name seen: an interface is gone when its delete prints."""

    def __init__(self) -> None:
        self.known: dict[int, str] = {}
        with contextlib.suppress(OSError):
            self.known.update(socket.if_nameindex())

    def __call__(self, index: int) -> str | None:
        if index == 0:
            return None
        try:
            name = socket.if_indextoname(index)
        except OSError:
            return self.known.get(index)
        self.known[index] = name
        return name

    def column(self, index: int) -> str:
        if index == 0:
            return "-"
        return f"{self(index) or '?'}[{index}]"


# ---------------------------------------------------------------- text


def without_scope(address: IPv4Address | IPv6Address | None) -> str:
    # The interface column already names the zone: "fe80::1", not "fe80::1%2".
    return str(address).partition("%")[0]


def enum_name(value: int, prefix: str) -> str:
    name = getattr(value, "name", None)
    return name.lower() if isinstance(name, str) else f"{prefix}-{int(value)}"


def family_name(family: int) -> str:
    return FAMILIES.get(family, f"family-{int(family)}")


def lifetime(seconds: int) -> str:
    return "forever" if seconds == INFINITE else f"{seconds}s"


def interface_details(row: MibIpInterfaceRow) -> str:
    state = "connected" if row.connected else "disconnected"
    return f"{family_name(row.family)} mtu {row.nl_mtu} {state}"


def address_details(row: MibUnicastIpAddressRow) -> str:
    state = enum_name(row.dad_state, "dad-state")
    return f"{without_scope(row.address)}/{row.on_link_prefix_length} {state}"


def next_hop(row: MibIpForwardRow2) -> str | None:
    """The next hop, or None for an on-link route."""
    hop = row.next_hop
    return None if hop is None or hop.is_unspecified else without_scope(hop)


def route_details(row: MibIpForwardRow2) -> str:
    hop = next_hop(row)
    via = "" if hop is None else f" via {hop}"
    return f"{row.destination_prefix}{via} metric {row.metric}"


def clock(when: float) -> str:
    return datetime.fromtimestamp(when).strftime("%H:%M:%S.%f")[:-3]


def event_line(event: Event, names: InterfaceNames) -> str:
    """One human-readable line: time, kind, change, interface, details (or a `-- marker --`)."""
    if isinstance(event, SnapshotComplete):
        return f"{clock(event.time)}  -- snapshot complete --"
    if isinstance(event, Overflow):
        return f"{clock(event.time)}  -- overflow: {event.dropped} changes dropped --"
    if isinstance(event, InterfaceEvent):
        index, details = event.row.interface_index, interface_details(event.row)
    elif isinstance(event, AddressEvent):
        index, details = event.row.interface_index, address_details(event.row)
    elif isinstance(event, RouteEvent):
        index, details = event.row.interface_index, route_details(event.row)
    elif isinstance(event, TeredoPortEvent):
        index, details = 0, f"port {event.port}"
    elif isinstance(event, StableTableEvent):  # not asked for by the command; shown for completeness
        return f"{clock(event.time)}  {event.kind:<9}  {'':<8}  {'-':<13}  {len(event.table)} addresses"
    else:
        assert_never(event)
    if not getattr(event, "complete", True):
        details += " (incomplete row)"
    return f"{clock(event.time)}  {event.kind:<9}  {event.change:<8}  {names.column(index):<13}  {details}"


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns, two blanks apart, with the header first."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


# ---------------------------------------------------------------- show


def interface_sort_key(row: MibIpInterfaceRow) -> tuple[int, int]:
    return (row.interface_index, int(row.family))


def address_sort_key(row: MibUnicastIpAddressRow) -> tuple[int, int, int]:
    address = row.address
    return (row.interface_index, address.version, int(address))


def route_sort_key(row: MibIpForwardRow2) -> tuple[int, int, int, int, int, int]:
    prefix, hop = row.destination_prefix, row.next_hop
    return (
        row.interface_index,
        prefix.version,
        int(prefix.network_address),
        prefix.prefixlen,
        int(hop),
        row.metric,
    )


def interface_cells(row: MibIpInterfaceRow, names: InterfaceNames) -> list[str]:
    return [
        names.column(row.interface_index),
        family_name(row.family),
        str(row.nl_mtu),
        "connected" if row.connected else "disconnected",
        "yes" if row.forwarding_enabled else "no",
    ]


def address_cells(row: MibUnicastIpAddressRow, names: InterfaceNames) -> list[str]:
    return [
        names.column(row.interface_index),
        f"{without_scope(row.address)}/{row.on_link_prefix_length}",
        enum_name(row.dad_state, "dad-state"),
        enum_name(row.prefix_origin, "origin"),
        lifetime(row.valid_lifetime),
        lifetime(row.preferred_lifetime),
    ]


def route_cells(row: MibIpForwardRow2, names: InterfaceNames) -> list[str]:
    return [
        names.column(row.interface_index),
        str(row.destination_prefix),
        next_hop(row) or "on-link",
        str(row.metric),
        enum_name(row.protocol, "protocol"),
    ]


Table: TypeAlias = tuple[
    Callable[[int], Sequence[Row]],
    Callable[[Any], Any],
    Sequence[str],
    Callable[[Any, InterfaceNames], list[str]],
]
SHOW: dict[str, Table] = {
    "interfaces": (
        get_ip_interface_table,
        interface_sort_key,
        ("INTERFACE", "FAMILY", "MTU", "STATE", "FORWARDING"),
        interface_cells,
    ),
    "addresses": (
        get_unicast_ip_address_table,
        address_sort_key,
        ("INTERFACE", "ADDRESS", "STATE", "ORIGIN", "VALID", "PREFERRED"),
        address_cells,
    ),
    "routes": (
        get_ip_forward_table2,
        route_sort_key,
        ("INTERFACE", "PREFIX", "NEXTHOP", "METRIC", "PROTOCOL"),
        route_cells,
    ),
}


# ---------------------------------------------------------------- output


class OutputClosed(Exception):
    """The reader of standard output went away."""


def write_lines(stream: TextIO, lines: Sequence[str]) -> None:
    """Writes and flushes; OutputClosed when the reader has gone (a closed pipe)."""
    try:
        stream.write("".join(f"{line}\n" for line in lines))
        stream.flush()
    except BrokenPipeError:
        raise OutputClosed from None
    except ValueError:  # stdout was closed under us
        raise OutputClosed from None
    except OSError as err:
        # Windows reports a write to a pipe whose reader is gone as EINVAL.
        if sys.platform == "win32" and err.errno == errno.EINVAL:
            raise OutputClosed from None
        raise


def silence_stdout() -> None:
    # After the reader went away, the interpreter's final flush of stdout would fail and print an error.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def fail(message: str) -> int:
    print(f"netnotify: error: {message}", file=sys.stderr)
    return EXIT_ERROR


# ---------------------------------------------------------------- commands


class CtrlC:
    """While watching, Ctrl-C (SIGINT) sets a flag that the main loop checks every POLL_SECONDS.

    KeyboardInterrupt is raised only while a line is written (a stalled pipe must not hold Ctrl-C off), never
    inside the watcher: raised in its wait (a threading.Condition), it can land between the wait and the
    re-acquisition of the lock, leave the lock released and end the program with a RuntimeError traceback.
    Where SIGINT is ignored (a background job) it stays ignored; off the main thread, where no handler can be
    installed, Ctrl-C raises KeyboardInterrupt as usual.
    """

    def __init__(self) -> None:
        self.pressed = False
        self.raising = False
        self.installed = False
        self.previous: Any = signal.SIG_DFL

    def __enter__(self) -> Self:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.SIG_IGN and threading.current_thread() is threading.main_thread():
            self.previous = signal.SIG_DFL if previous is None else previous  # None: not set from Python
            signal.signal(signal.SIGINT, self.handle)
            self.installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)

    def handle(self, signum: int, frame: object) -> None:
        self.pressed = True
        if self.raising:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def raises(self) -> Iterator[None]:
        """Ctrl-C raises KeyboardInterrupt within this block (which holds no lock of the watcher)."""
        if self.pressed:
            raise KeyboardInterrupt
        self.raising = True
        try:
            yield
        finally:
            self.raising = False


def run_watch(args: argparse.Namespace) -> int:
    kinds = kinds_of(args.kinds)
    family: int = args.family
    names = InterfaceNames()
    with CtrlC() as ctrl_c:
        try:
            watcher = watch(*kinds, family=family, snapshot=args.initial, backpressure="bounded")
        except NetioError as err:
            return fail(f"cannot watch {', '.join(kinds)}: {err.strerror or err}")
        with watcher:  # leaving it cancels every registration
            while not ctrl_c.pressed:
                try:
                    event = watcher.get(timeout=POLL_SECONDS)
                except TimeoutError:
                    continue
                except WatcherClosed:
                    return EXIT_OK
                line = dumps(event_to_json(event, names)) if args.json else event_line(event, names)
                with ctrl_c.raises():
                    write_lines(sys.stdout, [line])
    return EXIT_INTERRUPTED


def run_show(args: argparse.Namespace) -> int:
    read, sort_key, header, cells = SHOW[TABLES[args.table]]
    family: int = args.family
    names = InterfaceNames()
    try:
        rows = sorted(read(family), key=sort_key)
    except NetioError as err:
        return fail(f"cannot read the {TABLES[args.table]}: {err.strerror or err}")
    if args.json:
        lines = [dumps(row_to_json(row, names)) for row in rows]
    else:
        lines = table_lines(header, [cells(row, names) for row in rows])
    write_lines(sys.stdout, lines)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's parser, whose --help tells the options
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
        command: Callable[[argparse.Namespace], int] = run_watch if args.command == "watch" else run_show
        return command(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OutputClosed:
        silence_stdout()
        return EXIT_OK
