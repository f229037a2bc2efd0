"""Fixtures: a private network namespace per test, registrations cancelled at teardown, a watchdog.

The `ns` fixture moves the test's (main) thread into a new network namespace with unshare(CLONE_NEWNET)
and back with setns() at teardown. `ip` commands started from that thread, and the netlink sockets netnotify
opens when the test registers from that thread, belong to the new namespace; the machine's own namespace is
never changed (nettest.ip refuses to run there).
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

# A test that hangs (a deadlock that holds the GIL included) ends the run with every thread's traceback
# instead of hanging CI: faulthandler's watchdog thread needs no GIL.
WATCHDOG_SECONDS = 300.0
_watchdog_fd: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    # Output capture is suspended while plugins configure, so fd 2 is the real stderr here.
    _watchdog_fd.append(os.dup(2))


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
    assert nettest.netns_inode() == nettest.HOST_NETNS_INODE, "the session did not start in its own namespace"
    yield
    assert nettest.netns_inode() == nettest.HOST_NETNS_INODE, "the session ended in another namespace"


@pytest.fixture
def ns() -> Iterator[NetNS]:
    """A new network namespace for this test's thread, with `lo` up."""
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("the ns fixture must run on the main thread", pytrace=False)
    original_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
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
def regs(ns: NetNS) -> Iterator[Registrations]:
    """Registrations made from the test's namespace; all cancelled at teardown."""
    registrations = Registrations()
    yield registrations
    registrations.cancel_all()


@pytest.fixture
def lan(ns: NetNS) -> Lan:
    """veth v0/v1 up, with 10.9.0.1/24 and 2001:db8:1::1/64 on v0 (see nettest.Lan)."""
    return Lan.create(ns)
