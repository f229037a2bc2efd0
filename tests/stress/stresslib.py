"""Shared by the stress scripts: a private network namespace, the flood generator, process measurements.

A stress script calls `enter_private_netns()` first, while it is still single-threaded: the whole process (and
every thread and process it starts later) then lives in a new, empty network namespace, whether it was started
by hand on a machine or by a test from the test's own namespace. The machine's network is never touched.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # nettest
import nettest

# Linux only (network namespaces); mypy checks the rest of the file for Linux only.
assert sys.platform == "linux", "the stress scripts need Linux (network namespaces)"

FLOOD = Path(__file__).resolve().parent / "flood.py"


def enter_private_netns() -> None:
    """Moves the (still single-threaded) process into a new network namespace, with `lo` up."""
    if threading.active_count() != 1:
        raise RuntimeError("enter_private_netns() must run before any thread starts")
    # Subprocesses (the flood generator) learn which namespace is the machine's own from this variable.
    os.environ.setdefault(nettest.HOST_NETNS_ENV, str(nettest.HOST_NETNS_INODE))
    nettest.unshare_netns()
    nettest.ensure_private_netns()
    nettest.ip("link set lo up")


def prepare_links() -> None:
    """The links flood.py changes: v0/v1 (nettest.Lan: v0 has 10.9.0.1/24 and 2001:db8:1::1/64), v2/v3 (up,
    duplicate address detection on), v4/v5 (up, 10.11.0.1/24 on v4)."""
    ns = nettest.NetNS()
    nettest.Lan.create(ns)
    ns.veth("v2", "v3", up=True)
    ns.veth("v4", "v5", up=True, link_local=False)
    ns.ip("addr add 10.11.0.1/24 dev v4")


class Flood:
    """The generator process (flood.py) in this process's namespace; it ends with this process at the
    latest."""

    def __init__(self, rate: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(FLOOD), "--rate", str(rate)],
            stdin=subprocess.PIPE,  # its end of file tells the generator to stop
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=nettest.python_env(),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_status() -> dict[str, int]:
    """VmRSS (KiB) and Threads (every OS thread, netnotify's dispatcher included) from /proc/self/status."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # minus the directory listdir opened


@dataclass(frozen=True)
class Checkpoint:
    """The process at one point of a run, after a full garbage collection."""

    cycle: int
    seconds: float
    gc_objects: int
    allocated_blocks: int
    rss_kib: int
    fds: int
    threads: int

    @classmethod
    def take(cls, cycle: int, started: float) -> Checkpoint:
        gc.collect()
        status = proc_status()
        return cls(
            cycle=cycle,
            seconds=round(time.monotonic() - started, 2),
            gc_objects=len(gc.get_objects()),
            allocated_blocks=sys.getallocatedblocks(),
            rss_kib=status["VmRSS"],
            fds=open_fds(),
            threads=status["Threads"],
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_for(condition: Any, timeout: float) -> bool:
    """Polls condition() until it is true or timeout seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(0.01)
    return True
