"""Fixtures: a private network namespace per test, registrations cancelled at teardown, a watchdog.

The `ns` fixture moves the test's (main) thread into a new network namespace with unshare(CLONE_NEWNET)
and back with setns() at teardown. `ip` commands started from that thread, and the netlink sockets netnotify
opens when the test registers from that thread, belong to the new namespace; the machine's own namespace is
never changed (nettest.ip refuses to run there).

Platforms: the suite is one set of files everywhere. A file that needs Linux (it changes the network with
`ip` in a namespace) says `pytestmark = pytest.mark.linux`, a Windows-only one `pytest.mark.windows`; such
tests skip elsewhere, by platform, with the reason below (or the marker's own `reason=`). Every other
file is portable and runs on both (under Wine too, see .ci/wine/run): it uses `isolated` (a private
namespace on Linux, nothing to isolate elsewhere) rather than `ns`. Collection fails if a test that uses
`ns` is not marked `linux`.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:  # nettest is a module beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import nettest
from nettest import Lan, NetNS, Registrations

PLATFORM_MARKERS = {
    "linux": (
        nettest.LINUX,
        "needs Linux: it changes the network with iproute2 in a private network namespace (unshare)",
    ),
    "windows": (nettest.WINDOWS, "needs Windows: it checks the iphlpapi backend"),
}

# A test that hangs (a deadlock that holds the GIL included) ends the run with every thread's traceback
# instead of hanging CI: faulthandler's watchdog thread needs no GIL.
WATCHDOG_SECONDS = 300.0
_watchdog_fd: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    for name, (_, reason) in PLATFORM_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: the test {reason}; it skips on other platforms")
    # Output capture is suspended while plugins configure, so fd 2 is the real stderr here.
    _watchdog_fd.append(os.dup(2))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if "ns" in getattr(item, "fixturenames", ()) and item.get_closest_marker("linux") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use the ns fixture (Linux network namespaces) but are not marked "
            "`pytest.mark.linux`:\n  " + "\n  ".join(unmarked)
        )
    for item in items:
        for name, (here, reason) in PLATFORM_MARKERS.items():
            marker = item.get_closest_marker(name)
            if marker is not None and not here:
                item.add_marker(pytest.mark.skip(reason=marker.kwargs.get("reason", reason)))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _watchdog_fd:
        os.close(_watchdog_fd.pop())


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=_watchdog_fd[0])
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True, scope="session")
def host_netns_unchanged() -> Iterator[None]:
    """The session starts, and must end, in the namespace nettest recorded as the machine's own."""
    if not nettest.LINUX:
        yield
        return
    assert nettest.netns_inode() == nettest.HOST_NETNS_INODE, "the session did not start in its own namespace"
    yield
    assert nettest.netns_inode() == nettest.HOST_NETNS_INODE, "the session ended in another namespace"


@pytest.fixture
def ns() -> Iterator[NetNS]:
    """A new network namespace for this test's thread, with `lo` up (Linux only: mark the test `linux`)."""
    if not nettest.LINUX:
        pytest.fail("the ns fixture needs Linux; the test should be marked pytest.mark.linux", pytrace=False)
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("the ns fixture must run on the main thread", pytrace=False)
    original_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        original = os.fstat(original_fd).st_ino
        if original != nettest.HOST_NETNS_INODE:
            pytest.exit("a test left the main thread in another network namespace", returncode=3)
        nettest.unshare_netns()
        if nettest.netns_inode() == original:
            pytest.fail(
                "unshare(CLONE_NEWNET) left the thread in its namespace; nothing changed", pytrace=False
            )
        try:
            netns = NetNS()
            netns.ip("link set lo up")
            yield netns
        finally:
            nettest.setns_net(original_fd)
            if nettest.netns_inode() != original:
                pytest.exit("could not return to the original network namespace", returncode=3)
    finally:
        os.close(original_fd)


@pytest.fixture
def isolated(request: pytest.FixtureRequest) -> NetNS | None:
    """For portable tests: on Linux the test's private namespace (`ns`); elsewhere None, nothing to isolate.

    A portable test changes no network; it registers or reads tables wherever it runs.
    """
    if nettest.LINUX:
        netns: NetNS = request.getfixturevalue("ns")
        return netns
    return None


@pytest.fixture
def regs(isolated: NetNS | None) -> Iterator[Registrations]:
    """Registrations made from the test's namespace (on Linux); all cancelled at teardown."""
    registrations = Registrations()
    yield registrations
    registrations.cancel_all()


@pytest.fixture
def lan(ns: NetNS) -> Lan:
    """veth v0/v1 up, with 10.9.0.1/24 and 2001:db8:1::1/64 on v0 (see nettest.Lan)."""
    return Lan.create(ns)
