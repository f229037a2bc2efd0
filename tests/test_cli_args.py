"""The command line's arguments, --help and line formats. Portable: nothing is registered, nothing changes."""

from __future__ import annotations

import argparse
import re
import socket

import pytest
from nettest import NetNS, run_python

import netnotify
from netnotify import _cli
from netnotify._cli import EXIT_USAGE, InterfaceNames, build_parser, event_line, kinds_of, main, table_lines

Kind = netnotify.Kind
Change = netnotify.Change
NOWHERE = 99990  # an interface index that does not exist (short enough for the 13-character column)
TIME = re.compile(r"\d\d:\d\d:\d\d\.\d\d\d")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------- parsing


def test_watch_defaults() -> None:
    args = parse("watch")
    assert (args.command, args.kinds, args.family, args.initial, args.json) == (
        "watch",
        [],
        socket.AF_UNSPEC,
        False,
        False,
    )
    assert kinds_of(args.kinds) == [Kind.INTERFACE, Kind.ADDRESS, Kind.ROUTE]


@pytest.mark.parametrize(
    ("words", "kinds"),
    [
        (["interfaces"], [Kind.INTERFACE]),
        (["interface"], [Kind.INTERFACE]),
        (["addresses", "address"], [Kind.ADDRESS]),
        (["route", "interface"], [Kind.ROUTE, Kind.INTERFACE]),
        (["teredo"], [Kind.TEREDO]),
        (["routes", "teredo", "addresses", "routes"], [Kind.ROUTE, Kind.TEREDO, Kind.ADDRESS]),
    ],
)
def test_watch_kinds_singular_or_plural(words: list[str], kinds: list[Kind]) -> None:
    assert kinds_of(parse("watch", *words).kinds) == kinds


def test_watch_options() -> None:
    args = parse("watch", "-6", "--initial", "--json", "routes")
    assert (args.family, args.initial, args.json, args.kinds) == (socket.AF_INET6, True, True, ["routes"])
    assert parse("watch", "addresses", "-4").family == socket.AF_INET


@pytest.mark.parametrize(
    ("words", "table"),
    [
        (["interfaces"], "interfaces"),
        (["interface"], "interfaces"),
        (["addresses"], "addresses"),
        (["address"], "addresses"),
        (["routes"], "routes"),
        (["route", "-6", "--json"], "routes"),
    ],
)
def test_show_tables(words: list[str], table: str) -> None:
    args = parse("show", *words)
    assert _cli.TABLES[args.table] == table
    assert args.family == (socket.AF_INET6 if "-6" in words else socket.AF_UNSPEC)
    assert args.json == ("--json" in words)


BAD = [
    [],
    ["frobnicate"],
    ["--bogus"],
    ["watch", "--bogus"],
    ["watch", "frobs"],
    ["watch", "-4", "-6"],
    ["watch", "stable"],
    ["watch", "routes", "--json", "addresses"],  # the kinds come together
    ["show"],
    ["show", "teredo"],
    ["show", "routes", "addresses"],
    ["show", "routes", "--initial"],
    ["show", "-6", "-4", "routes"],
]


@pytest.mark.parametrize("argv", BAD, ids=lambda argv: " ".join(argv) or "(nothing)")
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert re.match(r"netnotify( watch| show)?: error: .+ \(see 'netnotify( watch| show)? --help'\)$", err), (
        err
    )


def test_bad_argument_names_what_was_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, words in [
        (["watch", "frobs"], ["'frobs'", "interfaces, addresses, routes, teredo"]),
        (["show", "teredo"], ["'teredo'", "interfaces, addresses, routes"]),
        (["watch", "--bogus"], ["--bogus", "netnotify watch --help"]),
        (["watch", "-4", "-6"], ["-4", "-6"]),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        for word in words:
            assert word in err, err


def test_bad_arguments_in_a_process(isolated: NetNS | None) -> None:
    done = run_python(["-m", "netnotify", "watch", "--bogus"], timeout=60)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "netnotify watch: error: unrecognized arguments: --bogus (see 'netnotify watch --help')"
    ]


# ---------------------------------------------------------------- --help


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["--help"], capsys)
    for word in ("watch", "show", "--version", "--help"):
        assert word in text
    assert help_text(["--version"], capsys) == f"netnotify {netnotify.__version__}\n"


def subparsers() -> dict[str, _cli.Parser]:
    return dict(build_parser().commands)


@pytest.mark.parametrize("command", ["watch", "show"])
def test_help_lists_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text([command, "--help"], capsys)
    parser = subparsers()[command]
    for action in parser._actions:
        for option in action.option_strings:
            assert re.search(rf"(^|\s|\[){re.escape(option)}\b", text), option
        if not action.option_strings:
            assert str(action.metavar) in text
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^  {code}\s+\S", text, re.MULTILINE), f"exit status {code}"


def test_watch_help_names_kinds_and_formats(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["watch", "--help"], capsys)
    for word in ("interfaces", "addresses", "routes", "teredo", "snapshot", "-- snapshot complete --"):
        assert word in text
    for word in ('"event": "snapshot_complete"', '"kind": "route"', "overflow"):
        assert word in text


def test_show_help_names_tables(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["show", "--help"], capsys)
    for word in ("interfaces", "addresses", "routes", "jq -s", "interface_name"):
        assert word in text


# ---------------------------------------------------------------- lines


@pytest.fixture
def names() -> InterfaceNames:
    known = InterfaceNames()
    known.known[NOWHERE] = "gone0"
    return known


def columns(line: str) -> tuple[str, str, str, str, str]:
    """A line cut at the fixed column offsets: time, kind, change, interface, details."""
    assert line[12:14] == line[23:25] == line[33:35] == "  ", line
    return line[:12], line[14:23].rstrip(), line[25:33].rstrip(), line[35:48].rstrip(), line[50:]


def test_interface_line(names: InterfaceNames) -> None:
    row = netnotify.MibIpInterfaceRow(family=socket.AF_INET6, interface_index=NOWHERE, nl_mtu=1400)
    line = event_line(
        netnotify.InterfaceEvent(change=Change.CHANGE, row=row, time=1763720000.25, complete=True), names
    )
    clock, kind, change, interface, details = columns(line)
    assert TIME.fullmatch(clock)
    assert clock.endswith(".250")
    assert (kind, change, details) == ("interface", "change", "ipv6 mtu 1400 disconnected")
    assert interface == f"gone0[{NOWHERE}]"  # the name it knew, though the interface is gone


def test_address_line(names: InterfaceNames) -> None:
    row = netnotify.MibUnicastIpAddressRow(
        address="fe80::1%5", interface_index=5, on_link_prefix_length=64, dad_state=1
    )
    line = event_line(netnotify.AddressEvent(change=Change.SNAPSHOT, row=row, time=0.0, complete=True), names)
    _, kind, change, _, details = columns(line)
    assert (kind, change, details) == ("address", "snapshot", "fe80::1/64 tentative")


def test_route_lines(names: InterfaceNames) -> None:
    via = netnotify.MibIpForwardRow2(
        interface_index=NOWHERE, destination_prefix="0.0.0.0/0", next_hop="192.0.2.1", metric=100
    )
    on_link = netnotify.MibIpForwardRow2(
        interface_index=NOWHERE, destination_prefix="2001:db8::/64", next_hop="::", metric=256
    )
    line = event_line(netnotify.RouteEvent(change=Change.ADD, row=via, time=0.0, complete=True), names)
    assert columns(line)[1:] == ("route", "add", f"gone0[{NOWHERE}]", "0.0.0.0/0 via 192.0.2.1 metric 100")
    line = event_line(
        netnotify.RouteEvent(change=Change.DELETE, row=on_link, time=0.0, complete=False), names
    )
    assert columns(line)[2:] == ("delete", f"gone0[{NOWHERE}]", "2001:db8::/64 metric 256 (incomplete row)")


def test_unknown_interface_and_teredo(names: InterfaceNames) -> None:
    row = netnotify.MibUnicastIpAddressRow(address="192.0.2.7", interface_index=NOWHERE - 1)
    line = event_line(netnotify.AddressEvent(change=Change.DELETE, row=row, time=0.0, complete=True), names)
    assert columns(line)[3] == f"?[{NOWHERE - 1}]"
    line = event_line(netnotify.TeredoPortEvent(Change.CHANGE, 3544, 0.0), names)
    assert columns(line)[1:] == ("teredo", "change", "-", "port 3544")


def test_marker_lines(names: InterfaceNames) -> None:
    line = event_line(netnotify.SnapshotComplete(0.0), names)
    assert TIME.fullmatch(line[:12])
    assert line[12:] == "  -- snapshot complete --"
    line = event_line(netnotify.Overflow(42, 0.0), names)
    assert line[12:] == "  -- overflow: 42 changes dropped --"


def test_table_lines_are_aligned() -> None:
    lines = table_lines(("A", "BBB", "C"), [("xxxx", "y", "z"), ("x", "yyyy", "")])
    assert lines == ["A     BBB   C", "xxxx  y     z", "x     yyyy"]
