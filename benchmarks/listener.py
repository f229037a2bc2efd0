"""One benchmark listener, run as its own process by benchmarks/run.py in the benchmark's network namespace.

Protocol with the harness: the listener subscribes, prints ``ready`` on stdout, counts events until it has
``--target`` of them (or nothing came for ``--quiet`` seconds), prints one JSON line with its figures, then
keeps its sockets open and obeys lines on stdin (``cancel`` in the scale mode) until stdin closes; then it
exits. The harness reads the kernel's drop counters (/proc/net/netlink) of the listener's sockets before
closing stdin.

CPU time is the process's own (getrusage, every thread) between ``ready`` and the last event; for `ip monitor`
it is the ip process's (/proc/PID/schedstat). Latency stamps are CLOCK_MONOTONIC (time.monotonic_ns) when the
event reached the consumer; `ip monitor` stamps its lines itself, in CLOCK_REALTIME (-ts).

Modes: nn-count, nn-read (netnotify's low-level callback), watch, watch-async (netnotify.watch), pyroute2,
ip-monitor, py-floor and py-async-floor (a raw socket read in Python, blocking or by asyncio: the floors),
scale (many registrations), cancel (cancel latency), table (get_ip_forward_table2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

# kind -> (RTNLGRP_* groups, nlmsg types counted)
KINDS = {
    "route": ([7, 11], [24, 25]),  # RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE; RTM_NEWROUTE, RTM_DELROUTE
    "address": ([5, 9], [20, 21]),  # RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR; RTM_NEWADDR, RTM_DELADDR
    "interface": ([1], [16, 17]),  # RTNLGRP_LINK; RTM_NEWLINK, RTM_DELLINK
}
SO_RCVBUFFORCE = 33
SOL_NETLINK = 270
NETLINK_DROP_MEMBERSHIP = 2
ENOBUFS = 105


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu_ns() -> dict[int, int]:
    """CPU time of each thread of this process, in ns (/proc/self/task/TID/schedstat)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        path = f"/proc/self/task/{tid}/schedstat"
        with contextlib.suppress(OSError, ValueError, IndexError), open(path) as f:
            out[int(tid)] = int(f.read().split()[0])
    return out


def maxrss_kib() -> int:
    """Peak RSS (VmHWM): ru_maxrss would carry the harness's over fork and exec."""
    return kib(proc_status()["VmHWM"])


def proc_status(pid: int | str = "self") -> dict[str, str]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def kib(value: str) -> int:
    return int(value.split()[0])


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ready(socket_pids: list[int] | None = None) -> None:
    """Tells the harness the listener is subscribed, and which processes hold its netlink sockets."""
    sys.stdout.write(f"ready {json.dumps(socket_pids or [os.getpid()])}\n")
    sys.stdout.flush()


def socket_inodes(pid: int | str = "self") -> set[int]:
    """Inodes of the sockets a process holds (/proc/PID/fd)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def netlink_route_sockets() -> dict[int, tuple[int, int]]:
    """inode -> (groups, drops) of the NETLINK_ROUTE sockets of this network namespace (/proc/net/netlink)."""
    found = {}
    with open("/proc/net/netlink") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == "0":
                found[int(cols[-1])] = (int(cols[3], 16), int(cols[-2]))
    return found


def netlink_drops(inodes: Iterable[int]) -> int:
    """The kernel's Drops count, summed over the given NETLINK_ROUTE sockets."""
    sockets = netlink_route_sockets()
    return sum(sockets[inode][1] for inode in inodes if inode in sockets)


class Run:
    """Counting state shared by a consumer and the watchdog that ends the measurement."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.target: int = args.target
        self.quiet: float = args.quiet
        self.count = 0
        self.overflows = 0
        self.end_ns = 0
        self.done = threading.Event()
        self.stamps: list[int] = []
        self.extra: dict[str, Any] = {}
        self.socket_pids = [os.getpid()]
        self.cpu0 = 0.0
        self.ready_ns = 0
        self.cpu_of: Callable[[], float] = cpu_seconds
        self.rss_of: Callable[[], int] = maxrss_kib
        self.before_report: Callable[[], None] | None = None
        self.threads0: dict[int, int] = {}

    def start(self) -> None:
        self.threads0 = thread_cpu_ns()
        self.cpu0 = self.cpu_of()
        self.ready_ns = time.monotonic_ns()
        ready(self.socket_pids)

    def reached(self) -> None:
        """Called by the consumer when count reaches the target."""
        self.end_ns = time.monotonic_ns()
        self.done.set()

    def wait_and_report(self) -> None:
        """Waits for the target or for quiet, then prints the result line."""
        seen, last = -1, time.monotonic()
        # Wakes rarely (it takes the GIL): the end of an incomplete run is known to within this period.
        while not self.done.wait(min(0.5, self.quiet / 4)):
            now = time.monotonic()
            if self.count != seen:
                seen, last = self.count, now
                self.end_ns = time.monotonic_ns()
            elif now - last > self.quiet:
                break
        self.report()

    def report(self) -> None:
        if self.before_report is not None:
            self.before_report()
        if not self.end_ns:
            self.end_ns = self.ready_ns
        # Where the CPU went: the main thread (a watcher's consumer) and the busiest other thread (netnotify's
        # dispatcher), from ready to now.
        threads1 = thread_cpu_ns()
        main = threading.main_thread().native_id
        spent = {tid: ns - self.threads0.get(tid, 0) for tid, ns in threads1.items()}
        self.extra["main_thread_cpu_s"] = spent.pop(main, 0) / 1e9
        self.extra["busiest_other_thread_cpu_s"] = max(spent.values(), default=0) / 1e9
        emit(
            {
                "events": self.count,
                "cpu_s": self.cpu_of() - self.cpu0,
                "maxrss_kib": self.rss_of(),
                "ready_ns": self.ready_ns,
                "last_ns": self.end_ns,
                "overflows": self.overflows,
                "complete": self.done.is_set(),
                "socket_pids": self.socket_pids,
                "stamps_ns": self.stamps,
                **self.extra,
            }
        )


def wait_stdin_eof(commands: dict[str, Callable[[], None]] | None = None) -> None:
    for line in sys.stdin:
        command = line.strip()
        if commands and command in commands:
            commands[command]()


# ---------------------------------------------------------------- netnotify


def nn_register_function(kind: str) -> Callable[..., Any]:
    import netnotify

    return {
        "route": netnotify.notify_route_change2,
        "address": netnotify.notify_unicast_ip_address_change,
        "interface": netnotify.notify_ip_interface_change,
    }[kind]


def count_overflows(run: Run) -> None:
    """netnotify reports a netlink overflow through sys.unraisablehook: count those."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if "overflow" in str(unraisable.exc_value):
            run.overflows += 1
        else:
            previous(unraisable)

    sys.unraisablehook = hook


def mode_nn(args: argparse.Namespace) -> None:
    run = Run(args)
    count_overflows(run)
    register = nn_register_function(args.kind)
    target = args.target
    stamps = run.stamps
    now = time.monotonic_ns
    latency = args.latency

    # One callback per variant, each as lean as it can be: what is measured is netnotify, not the callback.
    if args.mode == "nn-count" and not args.latency:

        def callback(context: Any, row: Any, notification_type: Any) -> None:
            run.count += 1
            if run.count == target:
                run.reached()

    elif args.mode == "nn-count":

        def callback(context: Any, row: Any, notification_type: Any) -> None:
            stamps.append(now())
            run.count += 1
            if run.count == target:
                run.reached()

    elif args.kind == "route":  # nn-read: the members a program looks at

        def callback(context: Any, row: Any, notification_type: Any) -> None:
            if latency:
                stamps.append(now())
            _prefix, _next_hop = row.destination_prefix, row.next_hop
            run.count += 1
            if run.count == target:
                run.reached()

    elif args.kind == "address":

        def callback(context: Any, row: Any, notification_type: Any) -> None:
            if latency:
                stamps.append(now())
            _address, _index = row.address, row.interface_index
            run.count += 1
            if run.count == target:
                run.reached()

    else:

        def callback(context: Any, row: Any, notification_type: Any) -> None:
            if latency:
                stamps.append(now())
            _index, _family = row.interface_index, row.family
            run.count += 1
            if run.count == target:
                run.reached()

    handle = register(socket.AF_UNSPEC, callback, None)
    run.start()
    if args.idle:
        wait_stdin_eof()
        handle.cancel()
        return
    run.wait_and_report()
    wait_stdin_eof()
    handle.cancel()


def mode_watch(args: argparse.Namespace) -> None:
    import netnotify

    run = Run(args)
    count_overflows(run)
    watcher = netnotify.watch(args.kind)
    stamps = run.stamps
    target = args.target
    latency = args.latency

    def stdin_then_close() -> None:
        wait_stdin_eof()
        watcher.close()

    run.start()
    if not args.idle:
        threading.Thread(target=run.wait_and_report, daemon=True).start()
    threading.Thread(target=stdin_then_close, daemon=True).start()

    if args.mode == "watch":
        for _event in watcher:
            if latency:
                stamps.append(time.monotonic_ns())
            run.count += 1
            if run.count == target:
                run.reached()
    else:
        import asyncio

        async def consume() -> None:
            async for _event in watcher:
                if latency:
                    stamps.append(time.monotonic_ns())
                run.count += 1
                if run.count == target:
                    run.reached()

        asyncio.run(consume())


# ---------------------------------------------------------------- pyroute2


def socket_inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def unsubscribe(sock: socket.socket, groups: int) -> None:
    """Stops a failed pyroute2 socket from receiving: pyroute2's close() after ENOBUFS leaves it open and
    subscribed (closing its descriptor behind pyroute2's back would let pyroute2 close a reused one later)."""
    for bit in range(32):
        if groups & (1 << bit):
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, bit + 1)


def mode_pyroute2(args: argparse.Namespace) -> None:
    import pyroute2
    from pyroute2.netlink.rtnl import (
        RTMGRP_IPV4_IFADDR,
        RTMGRP_IPV4_ROUTE,
        RTMGRP_IPV6_IFADDR,
        RTMGRP_IPV6_ROUTE,
        RTMGRP_LINK,
    )

    groups = {
        "route": RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
        "address": RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        "interface": RTMGRP_LINK,
    }[args.kind]
    wanted = {
        "route": ("RTM_NEWROUTE", "RTM_DELROUTE"),
        "address": ("RTM_NEWADDR", "RTM_DELADDR"),
        "interface": ("RTM_NEWLINK", "RTM_DELLINK"),
    }[args.kind]
    run = Run(args)
    run.extra["pyroute2"] = getattr(pyroute2, "__version__", "?")
    failed: dict[int, int] = {}  # inode -> drops, of the sockets given up after ENOBUFS

    def closed_socket_drops() -> None:
        """Drops of failed sockets pyroute2 has closed since (the harness counts the ones still open)."""
        still_open = socket_inodes() & failed.keys()
        run.extra["closed_socket_drops"] = sum(d for inode, d in failed.items() if inode not in still_open)

    run.before_report = closed_socket_drops

    def open_socket() -> tuple[Any, int]:
        ipr = pyroute2.IPRoute()
        sock = ipr.asyncore.socket
        if args.rcvbuf:  # as root: past net.core.rmem_max, like netnotify and the C reader
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, args.rcvbuf)
        ipr.bind(groups=groups)
        run.extra["rcvbuf"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return ipr, sock

    ipr, sock = open_socket()
    run.start()
    if not args.idle:
        threading.Thread(target=run.wait_and_report, daemon=True).start()

    def stdin_then_exit() -> None:
        wait_stdin_eof()
        os._exit(0)

    threading.Thread(target=stdin_then_exit, daemon=True).start()
    stamps = run.stamps
    target = args.target
    latency = args.latency
    while True:
        try:
            messages = ipr.get()
        except OSError as err:
            if err.errno != ENOBUFS:
                raise
            # pyroute2's documented recovery: the socket is unusable, open a new one (what was queued is
            # lost).
            run.overflows += 1
            inode = socket_inode(sock)
            unsubscribe(sock, groups)
            failed[inode] = netlink_drops({inode})
            with contextlib.suppress(OSError):
                ipr.close()
            ipr, sock = open_socket()
            continue
        for message in messages:
            if message.get("event") in wanted:
                if latency:
                    stamps.append(time.monotonic_ns())
                run.count += 1
                if run.count == target:
                    run.reached()


# ---------------------------------------------------------------- the floors of Python and of asyncio

NETLINK_ADD_MEMBERSHIP = 1


def floor_socket(args: argparse.Namespace) -> socket.socket:
    """A raw NETLINK_ROUTE socket subscribed to the kind's groups, with the C reader's buffer."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, args.rcvbuf)
    sock.bind((0, 0))
    for group in KINDS[args.kind][0]:
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
    return sock


def mode_floor(args: argparse.Namespace) -> None:
    """What any Python reader of the socket pays: one recv per datagram (blocking, or in an asyncio reader
    callback that wakes a task awaiting a future), the messages counted by their headers, nothing parsed."""
    sock = floor_socket(args)
    types = frozenset(KINDS[args.kind][1])
    run = Run(args)
    stamps = run.stamps
    target = args.target
    latency = args.latency
    unpack = struct.Struct("=IH").unpack_from

    def count(data: bytes) -> None:
        offset = 0
        while offset + 16 <= len(data):
            length, kind = unpack(data, offset)
            if kind in types:
                if latency:
                    stamps.append(time.monotonic_ns())
                run.count += 1
                if run.count == target:
                    run.reached()
            offset += max(16, (length + 3) & ~3)

    def receive() -> bytes:
        try:
            return sock.recv(65536)
        except OSError as err:
            if err.errno != ENOBUFS:
                raise
            run.overflows += 1  # lost: a floor does not repair
            return b""

    def stdin_then_exit() -> None:
        wait_stdin_eof()
        os._exit(0)

    run.start()
    if not args.idle:
        threading.Thread(target=run.wait_and_report, daemon=True).start()
    threading.Thread(target=stdin_then_exit, daemon=True).start()
    if args.mode == "py-floor":
        while True:
            count(receive())
    import asyncio

    async def consume() -> None:
        loop = asyncio.get_running_loop()
        received: list[bytes] = []
        waiter: list[asyncio.Future[None] | None] = [None]

        def readable() -> None:
            received.append(receive())
            future = waiter[0]
            if future is not None and not future.done():
                future.set_result(None)

        sock.setblocking(False)
        loop.add_reader(sock.fileno(), readable)
        while True:
            while received:
                count(received.pop(0))
            future = waiter[0] = loop.create_future()
            await future

    asyncio.run(consume())


# ---------------------------------------------------------------- ip monitor


def schedstat_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def mode_ip_monitor(args: argparse.Namespace) -> None:
    obj = {"route": "route", "address": "address", "interface": "link"}[args.kind]
    proc = subprocess.Popen(
        ["ip", "-ts", "-o", "monitor", obj], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    while not any(netlink_route_sockets().get(inode, (0, 0))[0] for inode in socket_inodes(proc.pid)):
        if time.monotonic() > deadline:
            raise SystemExit("ip monitor did not subscribe")
        time.sleep(0.002)
    run = Run(args)
    run.socket_pids = [proc.pid]
    run.cpu_of = lambda: schedstat_seconds(proc.pid)
    run.rss_of = lambda: kib(proc_status(proc.pid)["VmHWM"])
    run.start()
    if not args.idle:
        threading.Thread(target=run.wait_and_report, daemon=True).start()

    def stdin_then_exit() -> None:
        wait_stdin_eof()
        proc.terminate()
        proc.wait()
        os._exit(0)

    threading.Thread(target=stdin_then_exit, daemon=True).start()
    fd = proc.stdout.fileno()
    pending = b""
    target = args.target
    while True:
        select.select([fd], [], [])
        data = os.read(fd, 1 << 16)
        if not data:
            break
        if args.latency:
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                run.stamps.append(realtime_ns_of_ip_timestamp(line))
            run.count += len(lines)
        else:
            run.count += data.count(b"\n")
        if run.count >= target and not run.done.is_set():
            run.reached()
    time.sleep(3600)


def realtime_ns_of_ip_timestamp(line: bytes) -> int:
    """`ip -ts` prefixes a line with [YYYY-mm-ddTHH:MM:SS.ffffff], local time (gettimeofday)."""
    text = line[1:27].decode()
    whole = time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    return int(whole) * 1_000_000_000 + int(text[20:26]) * 1000


# ---------------------------------------------------------------- scale, cancel, table


def threads_now() -> int:
    return int(proc_status()["Threads"])


def rss_kib_now() -> int:
    return kib(proc_status()["VmRSS"])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p99": at(0.99), "max": ordered[-1], "n": len(ordered)}


def mode_scale(args: argparse.Namespace) -> None:
    import netnotify

    run = Run(args)
    count_overflows(run)
    counts = [0] * args.regs

    def callback(context: int, row: Any, notification_type: Any) -> None:
        counts[context] += 1

    threads0, rss0 = threads_now(), rss_kib_now()
    handles = [netnotify.notify_route_change2(socket.AF_UNSPEC, callback, 0)]
    time.sleep(0.05)  # the dispatcher thread starts with the first registration
    threads1, rss1 = threads_now(), rss_kib_now()
    t0 = time.perf_counter()
    handles += [netnotify.notify_route_change2(socket.AF_UNSPEC, callback, i) for i in range(1, args.regs)]
    register_s = time.perf_counter() - t0
    time.sleep(0.05)
    threads_n, rss_n = threads_now(), rss_kib_now()
    run.extra.update(
        regs=args.regs,
        threads_before=threads0,
        threads_after_1=threads1,
        threads_after_all=threads_n,
        rss_before_kib=rss0,
        rss_after_1_kib=rss1,
        rss_after_all_kib=rss_n,
        register_all_s=register_s,
    )
    run.start()
    # Done when every registration has the target: the watchdog looks at the minimum.
    seen, last = -1, time.monotonic()
    while True:
        time.sleep(0.05)
        low = min(counts)
        total = sum(counts)
        if low >= args.target:
            run.end_ns = time.monotonic_ns()
            run.done.set()
            break
        if total != seen:
            seen, last = total, time.monotonic()
            run.end_ns = time.monotonic_ns()
        elif time.monotonic() - last > args.quiet:
            break
    run.count = sum(counts)
    run.extra.update(
        min_per_reg=min(counts),
        max_per_reg=max(counts),
        regs_complete=sum(1 for c in counts if c >= args.target),
        threads_during=threads_now(),
        rss_end_kib=rss_kib_now(),
    )
    run.report()

    def cancel_all() -> None:
        samples = []
        for handle in handles:
            t = time.perf_counter_ns()
            handle.cancel()
            samples.append((time.perf_counter_ns() - t) / 1000)
        emit({"cancel_us": percentiles(samples), "threads_after_cancel": threads_now()})

    wait_stdin_eof({"cancel": cancel_all})


def mode_cancel(args: argparse.Namespace) -> None:
    """Cancel latency of an idle registration: no callback is running."""
    import netnotify

    def callback(context: Any, row: Any, notification_type: Any) -> None:
        pass

    samples = []
    for _ in range(args.target):
        handle = netnotify.notify_route_change2(socket.AF_UNSPEC, callback, None)
        time.sleep(0.005)
        t = time.perf_counter_ns()
        handle.cancel()
        samples.append((time.perf_counter_ns() - t) / 1000)
    ready()
    emit({"cancel_us": percentiles(samples), "maxrss_kib": maxrss_kib()})
    wait_stdin_eof()


def mode_table(args: argparse.Namespace) -> None:
    import netnotify

    rss0 = rss_kib_now()
    t = time.perf_counter()
    rows = netnotify.get_ip_forward_table2(socket.AF_INET)
    seconds = time.perf_counter() - t
    rss1 = rss_kib_now()
    ready()
    emit(
        {
            "rows": len(rows),
            "seconds": seconds,
            "rss_delta_kib": rss1 - rss0,
            "bytes_per_row": (rss1 - rss0) * 1024 / max(1, len(rows)),
            "maxrss_kib": maxrss_kib(),
        }
    )
    wait_stdin_eof()


MODES = {
    "nn-count": mode_nn,
    "nn-read": mode_nn,
    "watch": mode_watch,
    "watch-async": mode_watch,
    "pyroute2": mode_pyroute2,
    "ip-monitor": mode_ip_monitor,
    "py-floor": mode_floor,
    "py-async-floor": mode_floor,
    "scale": mode_scale,
    "cancel": mode_cancel,
    "table": mode_table,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--kind", choices=("route", "address", "interface"), default="route")
    parser.add_argument("--target", type=int, default=0)
    parser.add_argument("--quiet", type=float, default=2.0)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--idle", action="store_true")
    parser.add_argument("--rcvbuf", type=int, default=0)
    parser.add_argument("--regs", type=int, default=1000)
    args = parser.parse_args()
    MODES[args.mode](args)


if __name__ == "__main__":
    main()
