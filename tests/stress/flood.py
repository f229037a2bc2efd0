"""A generator process that floods a private network namespace with route, address and link changes.

    python tests/stress/flood.py [--rate LINES_PER_SECOND]

It runs in the network namespace it was started in (never the machine's own: nettest refuses) and expects the
links that `stresslib.prepare_links()` creates there. It feeds one long-lived `ip -force -batch -` process, so
that a change costs no process start, at about --rate commands a second, in a cycle that adds, replaces and
deletes IPv4 and IPv6 routes and addresses (IPv6 addresses with duplicate address detection, so that some
are tentative), changes an MTU, takes a link down and up (the kernel then flushes its IPv4 routes), and
creates and deletes a veth pair. It stops when its standard input reaches end of file (the process that
started it ended) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # nettest
import nettest

assert sys.platform == "linux", "the stress scripts need Linux (network namespaces)"  # mypy: Linux only

SLOTS = 128  # distinct routes and addresses in the cycle: the tables stay small, so dumps stay cheap


def commands() -> Iterator[str]:
    """The endless cycle of changes, one `ip` batch line each."""
    step = 0
    while True:
        k = step % SLOTS
        old = (k + SLOTS // 2) % SLOTS
        yield f"route replace 10.77.{k}.0/24 via 10.9.0.2 dev v0"
        yield f"route replace 2001:db8:77:{k:x}::/64 via 2001:db8:1::2 dev v0"
        yield f"addr replace 10.10.{k}.1/32 dev v0"
        yield f"route del 10.77.{old}.0/24"
        yield f"route del 2001:db8:77:{old:x}::/64"
        yield f"addr del 10.10.{old}.1/32 dev v0"
        if step % 8 == 0:  # duplicate address detection: tentative for about a second
            yield f"addr add 2001:db8:2::{k:x}/64 dev v2"
            yield f"addr del 2001:db8:2::{old:x}/64 dev v2"
        if step % 16 == 0:
            yield f"link set v3 mtu {1400 if step % 32 else 1500}"
        if step % 32 == 0:
            yield "link set v4 down"
            yield "link set v4 up"
            yield "route replace 10.78.0.0/24 via 10.11.0.2 dev v4"
        if step % 64 == 0:
            yield "link add v6 type veth peer name v7"
        if step % 64 == 32:
            yield "link del v6"
        step += 1


def run(rate: float) -> None:
    nettest.ensure_private_netns()
    ip = subprocess.Popen(
        ["ip", "-force", "-batch", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert ip.stdin is not None
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    lines = commands()
    next_tick = time.monotonic()
    try:
        while True:
            ip.stdin.write("".join(f"{next(lines)}\n" for _ in range(per_tick)))
            ip.stdin.flush()
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()  # behind: do not try to catch up in a burst
    finally:
        ip.kill()
        ip.wait()


def _exit_at_eof() -> None:
    """Ends the process when its standard input closes: the process that started it has ended."""
    while os.read(0, 4096):
        pass
    os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="ip commands per second (default 2000)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    threading.Thread(target=_exit_at_eof, daemon=True).start()
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        run(args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
