"""The command line in a private namespace: `watch` lines and JSON, --initial, -4/-6, `show` against `ip -j`,
Ctrl-C (exit 130), a closed pipe (exit 0, quiet), Teredo on Linux (exit 1)."""

from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import pytest
from nettest import Lan, NetNS, ensure_private_netns, python_env, run_python

pytestmark = pytest.mark.linux

MODULE = [sys.executable, "-m", "netnotify"]
SCRIPT = Path(sys.executable).parent / "netnotify"  # the console script installed beside this Python
TIME = re.compile(r"\d\d:\d\d:\d\d\.\d\d\d")
MARKER = "-- snapshot complete --"
Json = dict[str, Any]


def pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)  # end of file


class Watch:
    """`netnotify watch ARGS` running in the test's namespace, its output read line by line."""

    def __init__(self, *args: str, command: Sequence[str] = MODULE) -> None:
        ensure_private_netns()
        self.process = subprocess.Popen(
            [*command, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=python_env(),
        )
        assert self.process.stdout is not None
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=pump, args=(self.process.stdout, self.queue), daemon=True)
        self.reader.start()
        self.lines: list[str] = []
        self.ended = False
        self.probes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(5)  # it ends at end of file
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()

    def more(self, timeout: float) -> bool:
        """Waits up to timeout for one more line; False when none came (or the output ended)."""
        if self.ended:
            return False
        try:
            line = self.queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return False
        if line is None:
            self.ended = True
            return False
        self.lines.append(line)
        return True

    def expect(self, predicate: Callable[[str], bool], what: str, timeout: float = 10.0) -> str:
        """The first line printed so far, or within timeout, that matches."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for line in self.lines[checked:]:
                if predicate(line):
                    return line
            checked = len(self.lines)
            if not self.more(deadline - time.monotonic()) and (self.ended or time.monotonic() > deadline):
                raise AssertionError(f"watch printed no line with {what}; it printed:\n" + self.describe())

    def describe(self) -> str:
        return "\n".join(self.lines) or "(nothing)"

    def sync(self, ns: NetNS, version: int = 4) -> None:
        """Adds addresses to lo until `watch` prints one: it is then registered (it may still be starting)."""
        deadline = time.monotonic() + 15
        while self.probes < 250:
            self.probes += 1
            n = self.probes
            probe = f"10.66.0.{n}" if version == 4 else f"2001:db8:66::{n}"
            ns.ip(
                f"addr add {probe}/{32 if version == 4 else 128} dev lo" + (" nodad" if version == 6 else "")
            )
            until = time.monotonic() + 0.5
            while self.more(until - time.monotonic()):
                if probe in self.lines[-1]:
                    return
            if time.monotonic() > deadline:
                break
        raise AssertionError("watch printed no line for an added address; it printed:\n" + self.describe())

    def objects(self) -> list[Json]:
        return [json.loads(line) for line in self.lines]

    def stop(self) -> tuple[int, str]:
        """SIGINT, as Ctrl-C sends it; the exit code and standard error."""
        self.process.send_signal(signal.SIGINT)
        returncode = self.process.wait(timeout=10)
        self.reader.join(5)
        while self.more(0):
            pass
        assert self.process.stderr is not None
        return returncode, self.process.stderr.read()


def fields(line: str) -> list[str]:
    return line.split()


def containing(text: str) -> Callable[[str], bool]:
    return lambda line: text in line


def is_json_row(kind: str, change: str, **members: object) -> Callable[[str], bool]:
    def match(line: str) -> bool:
        obj = json.loads(line)
        if obj.get("kind") != kind or obj.get("change") != change:
            return False
        return all(obj["row"].get(name) == value for name, value in members.items())

    return match


# ---------------------------------------------------------------- watch


@pytest.mark.parametrize("command", [MODULE, [str(SCRIPT)]], ids=["python -m netnotify", "netnotify"])
def test_watch_prints_changes_and_stops_on_sigint(ns: NetNS, command: Sequence[str]) -> None:
    if command[0] == str(SCRIPT) and not SCRIPT.exists():
        pytest.skip(f"the console script is not installed at {SCRIPT}")
    with Watch(command=command) as watch:
        watch.sync(ns)
        line = watch.lines[-1]
        returncode, stderr = watch.stop()
    assert fields(line)[1:4] == ["address", "add", f"lo[{ns.ifindex('lo')}]"], line
    assert returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr == ""


def test_watch_lines(ns: NetNS, lan: Lan) -> None:
    with Watch() as watch:
        watch.sync(ns)
        ns.ip("addr add 10.9.0.20/24 dev v0")
        ns.ip("route add 10.50.0.0/24 via 10.9.0.2 dev v0 metric 7")
        ns.ip("route add 10.51.0.0/24 dev v0 metric 3")
        ns.ip("link set v0 mtu 1400")
        v0 = f"v0[{lan.index}]"
        address = watch.expect(containing("10.9.0.20/"), "the address")
        assert fields(address)[1:] == ["address", "add", v0, "10.9.0.20/24", "preferred"]
        route = watch.expect(containing("10.50.0.0/24"), "the route via a gateway")
        assert fields(route)[1:] == ["route", "add", v0, "10.50.0.0/24", "via", "10.9.0.2", "metric", "7"]
        route = watch.expect(containing("10.51.0.0/24"), "the on-link route")
        assert fields(route)[1:] == ["route", "add", v0, "10.51.0.0/24", "metric", "3"]
        for family in ("ipv4", "ipv6"):
            mtu = watch.expect(containing(f"{family} mtu 1400"), f"the {family} MTU")
            assert fields(mtu)[1:] == ["interface", "change", v0, family, "mtu", "1400", "connected"]
        ns.ip("link del v0")  # the delete lines name the interface that is gone
        gone = watch.expect(containing("interface  delete"), "the interface delete")
        assert fields(gone)[1:4] == ["interface", "delete", v0]
        returncode, stderr = watch.stop()
    assert returncode == 130, stderr
    for line in watch.lines:  # aligned: the columns start at fixed offsets
        assert TIME.fullmatch(line[:12]), line
        assert line[12:14] == line[23:25] == line[33:35] == line[48:50] == "  ", line
        assert line[14:23].rstrip() in ("interface", "address", "route"), line
        assert line[25:33].rstrip() in ("add", "change", "delete"), line


def test_watch_json(ns: NetNS, lan: Lan) -> None:
    with Watch("--json") as watch:
        watch.sync(ns)
        ns.ip("addr add 10.9.0.20/24 dev v0")
        ns.ip("addr add fe80::99/64 dev v0 nodad")
        ns.ip("route add 10.50.0.0/24 via 10.9.0.2 dev v0 metric 7")
        ns.ip("link set v0 mtu 1400")
        started = time.time()
        address = json.loads(watch.expect(is_json_row("address", "add", address="10.9.0.20"), "the address"))
        scoped = watch.expect(is_json_row("address", "add", address=f"fe80::99%{lan.index}"), "fe80::99")
        route = json.loads(
            watch.expect(is_json_row("route", "add", destination_prefix="10.50.0.0/24"), "the route")
        )
        mtu = json.loads(
            watch.expect(is_json_row("interface", "change", family="AF_INET", nl_mtu=1400), "mtu")
        )
        watch.stop()
    for obj in watch.objects():
        assert list(obj) == ["time", "kind", "change", "complete", "row"], obj
        assert obj["complete"] is True
        assert isinstance(obj["time"], float)
        assert abs(obj["time"] - started) < 60
    assert address["row"]["interface_index"] == lan.index
    assert address["row"]["interface_name"] == "v0"
    assert address["row"]["on_link_prefix_length"] == 24
    assert address["row"]["dad_state"] == "preferred"
    assert address["row"]["prefix_origin"] == "manual"
    assert json.loads(scoped)["row"]["scope_id"] == lan.index
    assert route["row"]["next_hop"] == "10.9.0.2"
    assert route["row"]["metric"] == 7
    assert route["row"]["interface_name"] == "v0"
    assert route["row"]["protocol"] == "netmgmt"
    assert mtu["row"]["connected"] is True
    assert mtu["row"]["interface_index"] == lan.index
    assert len(mtu["row"]["zone_indices"]) == 16


@pytest.mark.parametrize("output", ["text", "json"])
def test_watch_initial_prints_the_snapshot_then_changes(ns: NetNS, lan: Lan, output: str) -> None:
    as_json = output == "json"
    with Watch("--initial", *(["--json"] if as_json else [])) as watch:
        if as_json:
            watch.expect(lambda line: json.loads(line).get("event") == "snapshot_complete", "the marker")
        else:
            watch.expect(lambda line: line.endswith(MARKER), "the marker")
        snapshot = watch.lines[:-1]
        marker = watch.lines[-1]
        ns.ip("addr add 10.9.0.20/24 dev v0")
        live = watch.expect(containing("10.9.0.20"), "the live address")
        watch.stop()
    expected = {
        (ipaddress.ip_address(info["local"]), link["ifindex"])
        for link in ns.ip_json("addr")
        for info in link["addr_info"]
        if info["local"] != "10.9.0.20"
    }
    if as_json:
        objects = [json.loads(line) for line in snapshot]
        assert {obj["change"] for obj in objects} == {"snapshot"}
        assert list(json.loads(marker)) == ["time", "event"]
        assert json.loads(live)["change"] == "add"
        addresses = {
            (ipaddress.ip_address(obj["row"]["address"].partition("%")[0]), obj["row"]["interface_index"])
            for obj in objects
            if obj["kind"] == "address"
        }
        kinds = {obj["kind"] for obj in objects}
    else:
        assert TIME.fullmatch(marker[:12]), marker
        assert marker[12:] == "  " + MARKER, marker
        assert {fields(line)[2] for line in snapshot} == {"snapshot"}
        assert fields(live)[1:3] == ["address", "add"]
        names = {f"{link['ifname']}[{link['ifindex']}]": link["ifindex"] for link in ns.ip_json("link")}
        addresses = {
            (ipaddress.ip_address(fields(line)[4].split("/")[0]), names[fields(line)[3]])
            for line in snapshot
            if fields(line)[1] == "address"
        }
        kinds = {fields(line)[1] for line in snapshot}
    assert addresses == expected
    assert kinds == {"interface", "address", "route"}


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize("version", [4, 6])
def test_watch_one_family(ns: NetNS, lan: Lan, version: int, output: str) -> None:
    as_json = output == "json"
    with Watch(f"-{version}", *(["--json"] if as_json else [])) as watch:
        watch.sync(ns, version)
        ns.ip("addr add 2001:db8:1::20/64 dev v0 nodad")
        ns.ip("route add 2001:db8:50::/64 via 2001:db8:1::2 dev v0")
        ns.ip("addr add 10.9.0.20/24 dev v0")
        ns.ip("route add 10.50.0.0/24 via 10.9.0.2 dev v0")
        ns.ip("link set v0 mtu 1400")
        mine = "10.50.0.0/24" if version == 4 else "2001:db8:50::/64"
        watch.expect(containing(mine), "the route of the family")
        watch.sync(ns, version)  # a last change: everything before it was printed
        watch.stop()
    other = "AF_INET6" if version == 4 else "AF_INET"
    if as_json:
        for obj in watch.objects():
            row = obj["row"]
            if obj["kind"] == "interface":
                assert row["family"] != other, obj
            else:
                text = row.get("address") or row["destination_prefix"]
                assert ipaddress.ip_interface(text.partition("%")[0]).version == version, obj
    else:
        for line in watch.lines:
            details = line[13:]  # after the time, the only colons would be those of IPv6 addresses
            assert (":" in details) == (version == 6) or fields(line)[1] == "interface", line
            if fields(line)[1] == "interface":
                assert fields(line)[4] == f"ipv{version}", line


def test_watch_kinds(ns: NetNS, lan: Lan) -> None:
    with Watch("routes", "--json") as watch:
        watch.sync(ns)  # the local route of the probe address
        ns.ip("addr add 10.9.0.20/24 dev v0")  # an address and its routes; the routes only are printed
        ns.ip("link set v0 mtu 1400")
        watch.expect(is_json_row("route", "add", destination_prefix="10.9.0.20/32"), "the local route")
        watch.stop()
    assert {obj["kind"] for obj in watch.objects()} == {"route"}


def wait_blocked_in_pipe_write(pid: int, timeout: float = 15.0) -> None:
    """Waits until the main thread of pid sleeps in a write to a full pipe (as /proc/PID/wchan tells)."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        where = wchan.read_text() if wchan.exists() else ""
        if "pipe" in where:
            return
        if where in ("", "0") and time.monotonic() > deadline - timeout + 2:
            return  # this kernel does not tell: two seconds are enough to fill a pipe
        time.sleep(0.05)
    raise AssertionError(f"watch never blocked writing to the full pipe (wchan {where!r})")


def test_ctrl_c_while_the_output_is_stalled(ns: NetNS) -> None:
    """A reader that stopped reading (the pipe is full) does not hold Ctrl-C off."""
    ns.batch([f"addr add 10.77.{n // 250}.{n % 250 + 1}/32 dev lo" for n in range(400)])
    ensure_private_netns()
    with subprocess.Popen(
        [*MODULE, "watch", "--initial", "--json"],
        stdout=subprocess.PIPE,  # never read
        stderr=subprocess.PIPE,
        env=python_env(),
    ) as process:
        try:
            wait_blocked_in_pipe_write(process.pid)
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
    assert returncode == 130, stderr
    assert stderr == ""


def test_watch_teredo_is_not_supported_on_linux(isolated: NetNS | None) -> None:
    done = run_python(["-m", "netnotify", "watch", "teredo"], timeout=60)
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("netnotify: error: cannot watch teredo: "), done.stderr
    assert "not supported" in done.stderr


# ---------------------------------------------------------------- a closed output


def closed_pipe() -> tuple[int, Callable[[], None]]:
    """The write end of a pipe whose read end is closed already, and how to close it."""
    read, write = os.pipe()
    os.close(read)
    return write, lambda: os.close(write)


@pytest.mark.parametrize(
    "args", [["watch", "--initial"], ["watch", "--initial", "--json"], ["show", "routes"]], ids=" ".join
)
def test_a_closed_output_ends_quietly(ns: NetNS, args: list[str]) -> None:
    ensure_private_netns()
    write, close = closed_pipe()
    try:
        done = subprocess.run(
            [*MODULE, *args], stdout=write, stderr=subprocess.PIPE, text=True, env=python_env(), timeout=60
        )
    finally:
        close()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_watch_into_head_ends_quietly(ns: NetNS) -> None:
    """`netnotify watch | head -1`: the reader goes away after one line; the next line ends watch."""
    ensure_private_netns()
    with subprocess.Popen(
        [*MODULE, "watch", "--initial"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=python_env()
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            first = process.stdout.readline()
            process.stdout.close()
            deadline = time.monotonic() + 20
            n = 0
            while process.poll() is None and time.monotonic() < deadline:
                n += 1
                ns.ip(f"addr add 10.66.0.{n}/32 dev lo")
                time.sleep(0.1)
            returncode = process.wait(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr = process.stderr.read().decode()
    assert b"snapshot" in first
    assert returncode == 0, stderr
    assert stderr == ""


# ---------------------------------------------------------------- show


def show(*args: str) -> list[str]:
    done = run_python(["-m", "netnotify", "show", *args], timeout=60)
    assert done.returncode == 0, done
    assert done.stderr == ""
    return done.stdout.splitlines()


def show_json(*args: str) -> list[Json]:
    return [json.loads(line) for line in show(*args, "--json")]


def table(lines: list[str], header: list[str]) -> list[list[str]]:
    """The rows of a `show` table, after checking its header and that its columns are aligned."""
    assert fields(lines[0]) == header
    starts = [lines[0].index(name) for name in header]
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  ", (line, start)
            assert line[start] != " ", (line, start)
    return [fields(line) for line in lines[1:]]


def assert_sorted_by_index(indexes: Sequence[int]) -> None:
    assert list(indexes) == sorted(indexes)


@pytest.fixture
def busy_lan(ns: NetNS, lan: Lan) -> Lan:
    """The lan with more addresses and routes: a link-local address, a multipath route, defaults."""
    ns.ip("addr add 10.9.0.20/24 dev v0")
    ns.ip("addr add 10.20.0.1/16 dev v1")
    ns.ip("addr add fe80::99/64 dev v0 nodad")
    ns.ip("route add 10.50.0.0/24 via 10.9.0.2 dev v0 metric 7")
    ns.ip("route add 10.60.0.0/24 nexthop via 10.9.0.2 dev v0 nexthop via 10.9.0.3 dev v0")
    ns.ip("route add default via 10.9.0.2 dev v0")
    ns.ip("route add 2001:db8:50::/64 via 2001:db8:1::2 dev v0 metric 7")
    return lan


def ip_links(ns: NetNS) -> dict[int, str]:
    return {link["ifindex"]: link["ifname"] for link in ns.ip_json("link")}


@pytest.mark.parametrize("family", ["", "-4", "-6"])
def test_show_interfaces(ns: NetNS, busy_lan: Lan, family: str) -> None:
    versions = {"": ("ipv4", "ipv6"), "-4": ("ipv4",), "-6": ("ipv6",)}[family]
    links = ns.ip_json("link")
    expected = {
        (f"{link['ifname']}[{link['ifindex']}]", version, str(link["mtu"]))
        for link in links
        for version in versions
    }
    rows = table(
        show("interfaces", *filter(None, [family])), ["INTERFACE", "FAMILY", "MTU", "STATE", "FORWARDING"]
    )
    assert {(row[0], row[1], row[2]) for row in rows} == expected
    assert len(rows) == len(expected)
    assert_sorted_by_index([int(row[0].split("[")[1].rstrip("]")) for row in rows])
    for row in rows:
        assert row[3] == "connected", row  # lo, v0 and v1 are all up
        assert row[4] in ("yes", "no"), row

    objects = show_json("interfaces", *filter(None, [family]))
    families = {"ipv4": "AF_INET", "ipv6": "AF_INET6"}
    assert {
        (f"{obj['interface_name']}[{obj['interface_index']}]", obj["family"], str(obj["nl_mtu"]))
        for obj in objects
    } == {(name, families[version], mtu) for name, version, mtu in expected}
    assert_sorted_by_index([obj["interface_index"] for obj in objects])


@pytest.mark.parametrize("family", ["", "-4", "-6"])
def test_show_addresses(ns: NetNS, busy_lan: Lan, family: str) -> None:
    versions = {"": (4, 6), "-4": (4,), "-6": (6,)}[family]
    names = ip_links(ns)
    expected = {
        (f"{names[link['ifindex']]}[{link['ifindex']}]", f"{info['local']}/{info['prefixlen']}")
        for link in ns.ip_json("addr")
        for info in link["addr_info"]
        if ipaddress.ip_address(info["local"]).version in versions
    }
    header = ["INTERFACE", "ADDRESS", "STATE", "ORIGIN", "VALID", "PREFERRED"]
    rows = table(show("addresses", *filter(None, [family])), header)
    assert {(row[0], row[1]) for row in rows} == expected
    assert len(rows) == len(expected)
    assert_sorted_by_index([int(row[0].split("[")[1].rstrip("]")) for row in rows])
    by_address = {row[1]: row for row in rows}
    if 4 in versions:
        assert by_address["10.9.0.20/24"][2:] == ["preferred", "manual", "forever", "forever"]
    if 6 in versions:
        assert by_address["fe80::99/64"][0] == f"v0[{busy_lan.index}]"  # no scope: the interface names it

    objects = show_json("addresses", *filter(None, [family]))
    got = {
        (
            f"{obj['interface_name']}[{obj['interface_index']}]",
            f"{obj['address'].partition('%')[0]}/{obj['on_link_prefix_length']}",
        )
        for obj in objects
    }
    assert got == expected
    assert len(objects) == len(expected)
    if 6 in versions:
        assert f"fe80::99%{busy_lan.index}" in {obj["address"] for obj in objects}


def ip_routes(ns: NetNS, versions: Sequence[int]) -> set[tuple[str, str, str, str]]:
    """(interface, prefix, next hop or "on-link", metric) of the main and local tables, from `ip -j`."""
    names = ip_links(ns)
    keys: set[tuple[str, str, str, str]] = set()
    for version in versions:
        everything = "0.0.0.0/0" if version == 4 else "::/0"
        for route in ns.ip_json(f"-{version} route show table all"):
            if route.get("table", "main") not in ("main", "local"):
                continue
            prefix = str(ipaddress.ip_network(everything if route["dst"] == "default" else route["dst"]))
            for hop in route.get("nexthops", [route]):
                index = ns.ifindex(hop["dev"])
                gateway = hop.get("gateway", "on-link")
                keys.add((f"{names[index]}[{index}]", prefix, gateway, str(route.get("metric", 0))))
    return keys


@pytest.mark.parametrize("family", ["", "-4", "-6"])
def test_show_routes(ns: NetNS, busy_lan: Lan, family: str) -> None:
    versions = {"": (4, 6), "-4": (4,), "-6": (6,)}[family]
    expected = ip_routes(ns, versions)
    rows = table(
        show("routes", *filter(None, [family])), ["INTERFACE", "PREFIX", "NEXTHOP", "METRIC", "PROTOCOL"]
    )
    assert {(row[0], row[1], row[2], row[3]) for row in rows} == expected
    assert len(rows) == len(expected)
    assert_sorted_by_index([int(row[0].split("[")[1].rstrip("]")) for row in rows])
    if 4 in versions:
        assert ["10.60.0.0/24", "10.9.0.3"] in [row[1:3] for row in rows]

    objects = show_json("routes", *filter(None, [family]))
    got = {
        (
            f"{obj['interface_name']}[{obj['interface_index']}]",
            obj["destination_prefix"],
            "on-link" if ipaddress.ip_address(obj["next_hop"]).is_unspecified else obj["next_hop"],
            str(obj["metric"]),
        )
        for obj in objects
    }
    assert got == expected
    assert len(objects) == len(expected)
