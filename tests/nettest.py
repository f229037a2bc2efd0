"""Helpers shared by the tests: private network namespaces, `ip`, collecting callbacks, subprocesses.

Every change to the network goes through `ip()` / `sysctl()` here, and both refuse to run in the network
namespace the test session started in: a test changes only a namespace of its own. That needs Linux; this
module imports on every platform (the namespace helpers are only called on Linux).
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netnotify

LINUX = sys.platform == "linux"
WINDOWS = sys.platform == "win32"
# Set by .ci/wine/run: the Windows build runs under Wine, whose iphlpapi lacks calls and never calls back.
UNDER_WINE = WINDOWS and os.environ.get("NETNOTIFY_UNDER_WINE") == "1"
# Set by .ci/sanitize: the extension is built with ASan and UBSan (their runtimes preloaded in every Python).
UNDER_SANITIZER = os.environ.get("NETNOTIFY_UNDER_SANITIZER") == "1"

CLONE_NEWNET = 0x40000000
TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# A Python subprocess started by a test learns the session's own namespace from this variable.
HOST_NETNS_ENV = "NETNOTIFY_TEST_HOST_NETNS"

SETTLE = 0.5  # seconds to wait for events that must NOT come, after a positive marker arrived
IF_TYPE_ETHERNET = 6
IF_TYPE_LOOPBACK = 24

ADD = netnotify.MibNotificationType.ADD_INSTANCE
DELETE = netnotify.MibNotificationType.DELETE_INSTANCE
PARAMETER = netnotify.MibNotificationType.PARAMETER_NOTIFICATION
INITIAL = netnotify.MibNotificationType.INITIAL_NOTIFICATION

# The three kinds of change notification, by the name the tests use.
NOTIFY: dict[str, Callable[..., netnotify.NotificationHandle]] = {
    "interface": netnotify.notify_ip_interface_change,
    "address": netnotify.notify_unicast_ip_address_change,
    "route": netnotify.notify_route_change2,
}


# ---------------------------------------------------------------- namespaces


def netns_inode() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def _host_netns_inode() -> int:
    inherited = os.environ.get(HOST_NETNS_ENV)
    return int(inherited) if inherited else netns_inode()


# Computed when conftest imports this module, on the main thread, before any test switched namespace.
HOST_NETNS_INODE = _host_netns_inode() if LINUX else 0


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check_libc(result: int, call: str) -> None:
    if result != 0:
        errnum = ctypes.get_errno()
        raise OSError(errnum, f"{call}: {os.strerror(errnum)}")


def unshare_netns() -> None:
    """Moves the calling thread into a new, empty network namespace."""
    _check_libc(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def setns_net(fd: int) -> None:
    """Moves the calling thread into the network namespace open as fd."""
    _check_libc(_libc().setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def ensure_private_netns() -> None:
    if not LINUX:
        raise RuntimeError(
            "refusing to touch the network: tests change it only on Linux, in a private namespace"
        )
    if netns_inode() == HOST_NETNS_INODE:
        raise RuntimeError(
            "refusing to touch the network: this thread is in the machine's own network namespace"
        )


def ip(args: str, *, stdin: str | None = None) -> str:
    """Runs `ip ARGS` in the calling thread's (private) namespace and returns its output."""
    ensure_private_netns()
    command = ["ip", *shlex.split(args)]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def sysctl(key: str, value: str | int) -> None:
    ensure_private_netns()
    subprocess.run(["sysctl", "-q", "-w", f"{key}={value}"], check=True, timeout=30)


class NetNS:
    """The private network namespace of one test, as seen from the test's thread."""

    def ip(self, args: str) -> str:
        return ip(args)

    def ip_json(self, args: str) -> Any:
        output = ip(f"-j {args}")
        return json.loads(output) if output.strip() else []

    def batch(self, commands: Sequence[str]) -> None:
        """Runs many `ip` commands in one process (`ip -batch -`), so that the kernel sends a burst."""
        ip("-batch -", stdin="".join(f"{command}\n" for command in commands))

    def sysctl(self, key: str, value: str | int) -> None:
        sysctl(key, value)

    def ifindex(self, name: str) -> int:
        return socket.if_nametoindex(name)  # ioctl on a socket of this thread's namespace

    def veth(self, name: str = "v0", peer: str = "v1", *, up: bool = False, link_local: bool = True) -> int:
        """Creates a veth pair; returns the index of `name`. link_local=False: no IPv6 link-local address."""
        ip(f"link add {name} type veth peer name {peer}")
        for link in (name, peer):
            if not link_local:
                ip(f"link set dev {link} addrgenmode none")
            if up:
                ip(f"link set dev {link} up")
        return self.ifindex(name)

    def is_tentative(self, address: str) -> bool:
        for link in self.ip_json("addr"):
            for info in link.get("addr_info", []):
                if info.get("local") == address:
                    return bool(info.get("tentative", False))
        raise AssertionError(f"{address} is not configured: {self.ip('addr')}")


@dataclass(frozen=True)
class Lan:
    """A veth pair v0/v1, both up, no link-local addresses; v0 has V4 and V6 (nodad), so v0 can route."""

    index: int
    peer_index: int
    v4 = ipaddress.IPv4Interface("10.9.0.1/24")
    v6 = ipaddress.IPv6Interface("2001:db8:1::1/64")
    gateway4 = ipaddress.IPv4Address("10.9.0.2")
    gateway6 = ipaddress.IPv6Address("2001:db8:1::2")

    @classmethod
    def create(cls, ns: NetNS) -> Lan:
        index = ns.veth("v0", "v1", up=True, link_local=False)
        ns.ip(f"addr add {cls.v4} dev v0")
        ns.ip(f"addr add {cls.v6} dev v0 nodad")
        # The kernel finishes bringing a veth up later (carrier, then IPv6 routes): wait for it, so that
        # tests start from a quiet namespace even on a loaded machine.
        deadline = time.monotonic() + 10
        while not (
            ns.ip(f"-6 route show table local {cls.v6.ip}").strip()
            and ns.ip("-6 route show table local ff00::/8 dev v0").strip()
            and ns.ip("-6 route show table local ff00::/8 dev v1").strip()
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the veth pair did not come up within 10 s")
            time.sleep(0.01)
        return cls(index=index, peer_index=ns.ifindex("v1"))


def luid(iftype: int, ifindex: int) -> int:
    """NET_LUID as docs/api.md derives it."""
    return iftype << 48 | (ifindex & 0xFFFFFF) << 24


def row_family(row: Any) -> socket.AddressFamily:
    """The address family of an interface, address or route row."""
    if isinstance(row, netnotify.MibIpInterfaceRow):
        return row.family
    if isinstance(row, netnotify.MibUnicastIpAddressRow):
        version = row.address.version
    else:
        version = row.destination_prefix.version
    return socket.AF_INET if version == 4 else socket.AF_INET6


def without_scope(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(address.packed)


# ---------------------------------------------------------------- collecting callbacks


@dataclass(frozen=True)
class Event:
    context: object
    row: Any
    type: netnotify.MibNotificationType
    thread: int

    def __str__(self) -> str:
        name = getattr(self.type, "name", repr(self.type))
        return f"{name} {self.row!r}"


class Match:
    """A predicate on events: the notification type (if given) and row members equal to the given values."""

    def __init__(
        self, notification_type: netnotify.MibNotificationType | None = None, **members: object
    ) -> None:
        self.type = notification_type
        self.members = members

    def __call__(self, event: Event) -> bool:
        if event.row is None or (self.type is not None and event.type != self.type):
            return False
        return all(getattr(event.row, name) == value for name, value in self.members.items())

    def __repr__(self) -> str:
        name = self.type.name if self.type is not None else "any"
        return f"{name} with " + ", ".join(f"{k}={v!r}" for k, v in self.members.items())


# System call numbers (asm/unistd.h) of the architectures the tests run on: the tests that check where
# netnotify's threads sleep (/proc/self/task/TID/syscall) know these only.
SYSCALLS = {
    "x86_64": {299: "recvmmsg", 232: "epoll_wait", 281: "epoll_pwait", 441: "epoll_pwait2"},
    "aarch64": {243: "recvmmsg", 22: "epoll_pwait", 441: "epoll_pwait2"},
}
KNOWS_SYSCALLS = platform.machine() in SYSCALLS
KNOWS_SYSCALLS_REASON = "knows the system call numbers of x86_64 and aarch64 only"


def _syscall_fields(tid: int | None) -> list[str]:
    """/proc/self/task/TID/syscall, split: the call's number and arguments, ["running"], or [] (no thread)."""
    try:
        return Path(f"/proc/self/task/{tid}/syscall").read_text().split()
    except OSError:
        return []


def _syscall_name(fields: list[str]) -> str:
    if not fields:
        return "gone"
    if not fields[0].isdigit():
        return "running"
    return SYSCALLS.get(platform.machine(), {}).get(int(fields[0]), f"syscall {fields[0]}")


def syscall_of(tid: int | None) -> str:
    """The system call thread tid of this process is in: a name from SYSCALLS, "syscall N", "running",
    or "gone" (no such thread)."""
    return _syscall_name(_syscall_fields(tid))


def epoll_timeout_of(tid: int) -> int | None:
    """The timeout (ms, -1: none) thread tid of this process sleeps in epoll_wait or epoll_pwait with; None
    when it is not in one of them."""
    fields = _syscall_fields(tid)
    if _syscall_name(fields) not in ("epoll_wait", "epoll_pwait") or len(fields) < 5:
        return None
    timeout = int(fields[4], 16) & 0xFFFFFFFF  # an int: the register's low 32 bits
    return timeout - (1 << 32) if timeout >= 1 << 31 else timeout


def context_switches(tid: int) -> int:
    """How many times thread tid of this process went to sleep or was preempted so far."""
    total = 0
    for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
            total += int(line.split()[1])
    return total


def syscalls() -> dict[int, str]:
    """The system call each thread of the process is in (see syscall_of)."""
    found = {int(tid): syscall_of(int(tid)) for tid in os.listdir("/proc/self/task")}
    return {tid: name for tid, name in found.items() if name != "gone"}


RowHook = Callable[[Callable[[Any, Any, Any], object], Any, Any, Any], None]


def hook_watch_rows(hook: RowHook, set_attribute: Callable[[object, str, Any], None] = setattr) -> None:
    """Every row registration a watcher makes from now on calls hook(callback, kind, row, notification_type)
    instead of its callback (Watcher._on_row, or on Linux the plain watcher's C _PlainSink), on the thread
    that delivers the change; the hook calls callback(kind, row, notification_type) itself. set_attribute:
    pytest's monkeypatch.setattr, to undo it after the test (a script's own process may keep it)."""
    from netnotify import _netnotify as _nn  # the module whose functions the watcher calls

    def hooked(register: Callable[..., Any]) -> Callable[..., Any]:
        def register_hooked(family: int, callback: Callable[[Any, Any, Any], object], context: Any) -> Any:
            return register(family, lambda kind, row, ntype: hook(callback, kind, row, ntype), context)

        return register_hooked

    for name in ("notify_ip_interface_change", "notify_unicast_ip_address_change", "notify_route_change2"):
        set_attribute(_nn, name, hooked(getattr(_nn, name)))


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Collector:
    """A change callback that records every call; `then` (if given) runs after recording, in the callback."""

    def __init__(self, then: Callable[[Event], None] | None = None) -> None:
        self.then = then
        self.handle: netnotify.NotificationHandle | None = None
        self._cond = threading.Condition()
        self._events: list[Event] = []

    def __call__(self, context: object, row: Any, notification_type: netnotify.MibNotificationType) -> None:
        event = Event(context, row, notification_type, threading.get_ident())
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
        if self.then is not None:
            self.then(event)

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [event for event in self.events if predicate(event)]

    def describe(self) -> str:
        return "\n".join(f"  {event}" for event in self.events) or "  (nothing)"

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """The first event (of all seen so far) that matches; fails after timeout, listing what came."""
        return self.wait_count(predicate, 1, timeout)[0]

    def wait_count(self, predicate: Callable[[Event], bool], count: int, timeout: float = 5.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        found: list[Event] = []
        checked = 0
        with self._cond:
            while True:
                found += [event for event in self._events[checked:] if predicate(event)]
                checked = len(self._events)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} event(s) {predicate!r} within {timeout} s, got {len(found)}; "
                        f"seen:\n{self.describe()}"
                    )
                self._cond.wait(remaining)


class Registrations:
    """The registrations of one test; cancelled when the test ends."""

    def __init__(self) -> None:
        self.handles: list[netnotify.NotificationHandle] = []

    def keep(self, handle: netnotify.NotificationHandle) -> netnotify.NotificationHandle:
        self.handles.append(handle)
        return handle

    def watch(
        self,
        kind: str,
        family: int = socket.AF_UNSPEC,
        *,
        collector: Collector | None = None,
        initial_notification: bool = False,
        caller_context: object = None,
    ) -> Collector:
        """Registers a Collector for changes of kind ("interface", "address", "route") from this thread."""
        collector = collector if collector is not None else Collector()
        handle = NOTIFY[kind](family, collector, caller_context, initial_notification)
        collector.handle = self.keep(handle)
        return collector

    def cancel_all(self) -> None:
        for handle in reversed(self.handles):
            handle.cancel()


class BackgroundCall:
    """Runs fn on a new thread, recording when it returned and what it raised."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.error: BaseException | None = None
        self.returned_at: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.fn()
        except BaseException as exc:  # reported by the test, not by threading.excepthook
            self.error = exc
        self.returned_at = time.monotonic()


# ---------------------------------------------------------------- Python subprocesses


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env[HOST_NETNS_ENV] = str(HOST_NETNS_INODE)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_python(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Runs `python ARGS` (on Linux in the thread's private namespace); killed and failed after timeout."""
    if LINUX:
        ensure_private_netns()
    command = [sys.executable, *args]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=python_env(), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{shlex.join(command)} still ran after {timeout} s (killed)\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        ) from None
