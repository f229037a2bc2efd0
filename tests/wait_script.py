"""Run by test_dispatcher_wait.py in the test's network namespace, in a fresh interpreter (so that no other
test's registration is live): how netnotify's Linux threads wait, step by step.

    python wait_script.py dispatcher   with one registration the dispatcher must sleep in the read of
                                       that registration's socket (recvmmsg); with two, in epoll_wait; a
                                       registration made, or a cancel, while it sleeps in the read must
                                       wake it
    python wait_script.py watch        a watcher's blocking consumer reads its socket on its own thread
                                       while it waits (recvmmsg there, the dispatcher in epoll_wait); the
                                       dispatcher reads it while the consumer is busy; close() and SIGINT
                                       wake the consumer
    python wait_script.py stream       a blocking consumer taking a burst event after event keeps its socket
                                       between its reads (the dispatcher sleeps on); once nothing changes,
                                       the dispatcher's looks at it stop; when the consumer stops coming
                                       back, the dispatcher takes the socket back and reads it
    python wait_script.py async        an asyncio consumer's event loop reads the socket while a coroutine
                                       awaits aget(); the dispatcher reads it while the consumer awaits
                                       something else, after a timeout, while the loop thread blocks in
                                       get(), and once the loop has stopped; close() from another thread
                                       ends the wait and lets the loop's descriptors go

One JSON line ends the run: the system calls the threads slept in after each step (read from
/proc/self/task/*/syscall) and what the consumers saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netnotify

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nettest import context_switches, epoll_timeout_of, hook_watch_rows, ip, syscalls


def sleeping_in() -> list[str]:
    """The system calls the process's other threads are blocked in (the dispatcher's among them)."""
    main = threading.get_native_id()
    return [name for tid, name in syscalls().items() if tid != main]


def thread_in(tid: int, expected: str, timeout: float = 5.0) -> str:
    """Waits until thread tid sleeps in `expected`; returns what it is in then."""
    deadline = time.monotonic() + timeout
    while True:
        now = syscalls().get(tid, "gone")
        if now.startswith(expected) or time.monotonic() > deadline:
            return now
        time.sleep(0.01)


def settle_in(expected: str, timeout: float = 5.0) -> list[str]:
    """Waits until a thread sleeps in `expected`; returns what the threads sleep in."""
    deadline = time.monotonic() + timeout
    while True:
        now = sleeping_in()
        if any(name.startswith(expected) for name in now) or time.monotonic() > deadline:
            return now
        time.sleep(0.01)


class Seen:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[int, Any]] = []

    def __call__(self, context: object, row: Any, ntype: netnotify.MibNotificationType) -> None:
        with self.cond:
            self.events.append((int(ntype), row))
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(predicate(t, r) for t, r in self.events), timeout)


def link_up() -> None:
    """A veth pair, up, with 10.77.0.1/24 on wa0 (the gateway 10.77.0.2 is on its link)."""
    ip("link add wa0 type veth peer name wa1")
    ip("link set wa0 up")
    ip("link set wa1 up")
    ip("address add 10.77.0.1/24 dev wa0")


def dispatcher() -> None:
    report: dict[str, Any] = {}
    link_up()

    routes = Seen()
    first = netnotify.notify_route_change2(socket.AF_INET, routes)
    report["one"] = settle_in("recvmmsg")

    # A second registration while the dispatcher sleeps in the first one's read: its initial notification
    # comes only if the registration woke the dispatcher (nothing else happens on the first one's socket).
    links = Seen()
    started = time.monotonic()
    second = netnotify.notify_ip_interface_change(socket.AF_UNSPEC, links, None, True)
    report["woken_for_a_registration"] = links.wait(lambda t, r: t == 3)
    report["initial_after_s"] = time.monotonic() - started
    report["two"] = settle_in("epoll")

    ip("link add wb0 type veth peer name wb1")
    index = socket.if_nametoindex("wb0")
    report["link_seen"] = links.wait(lambda t, r: t == 1 and r is not None and r.interface_index == index)
    ip("route add 10.78.0.0/16 via 10.77.0.2")
    report["route_seen"] = routes.wait(lambda t, r: t == 1 and str(r.destination_prefix) == "10.78.0.0/16")

    started = time.monotonic()
    second.cancel()
    report["cancel_second_s"] = time.monotonic() - started
    report["one_again"] = settle_in("recvmmsg")

    # A cancel while the dispatcher sleeps in the read of the registration cancelled.
    started = time.monotonic()
    first.cancel()
    report["cancel_first_s"] = time.monotonic() - started
    report["none"] = settle_in("epoll")
    ip("route del 10.78.0.0/16")
    time.sleep(0.3)
    report["after_cancel"] = [t for t, r in routes.events if t == 2]
    print(json.dumps(report))


def route_add(i: int) -> None:
    ip(f"route add 10.79.{i // 256}.{i % 256}/32 via 10.77.0.2")


class RouteConsumer:
    """`for event in watcher` on a thread of its own, recording each route event; after(count) runs after
    each (where a step makes the consumer busy, or stop)."""

    def __init__(self, watcher: netnotify.Watcher, after: Callable[[int], None]) -> None:
        self.watcher = watcher
        self.after = after
        self.seen: list[str] = []
        self.cond = threading.Condition()
        self.tid = self.ident = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def _run(self, started: threading.Event) -> None:
        self.tid, self.ident = threading.get_native_id(), threading.get_ident()
        started.set()
        for event in self.watcher:
            assert isinstance(event, netnotify.RouteEvent)
            with self.cond:
                self.seen.append(f"{event.change} {event.row.destination_prefix}")
                self.cond.notify_all()
                count = len(self.seen)
            self.after(count)

    def wait_seen(self, count: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.seen) >= count, timeout)

    def in_order(self, count: int) -> bool:
        with self.cond:
            return self.seen == [f"add 10.79.{i // 256}.{i % 256}/32" for i in range(count)]


def watch() -> None:
    report: dict[str, Any] = {}
    link_up()
    watcher = netnotify.watch("route", family=socket.AF_INET)
    pause = threading.Event()

    def after(_count: int) -> None:
        if pause.is_set():
            pause.clear()
            time.sleep(1.0)  # busy: the dispatcher must read meanwhile

    consumer = RouteConsumer(watcher, after)
    wait_seen = consumer.wait_seen
    route_add(0)  # the first wait asks for the socket: its event comes through the dispatcher
    report["first"] = wait_seen(1)
    route_add(1)
    report["second"] = wait_seen(2)
    tid = consumer.tid
    report["consumer_sleeps_in"] = thread_in(tid, "recvmmsg")
    report["others_sleep_in"] = sorted(
        name for t, name in syscalls().items() if t not in (tid, threading.get_native_id())
    )

    pause.set()
    route_add(2)  # taken, then the consumer is busy for 1 s
    report["third"] = wait_seen(3)
    time.sleep(0.05)
    for i in range(3, 103):
        route_add(i)
    time.sleep(0.3)
    report["queued_while_busy"] = len(watcher)  # read by the dispatcher while the consumer slept
    report["all_seen"] = wait_seen(103, timeout=10)
    report["in_order"] = consumer.in_order(103)
    report["consumer_sleeps_in_again"] = thread_in(tid, "recvmmsg")

    started = time.monotonic()
    watcher.close()
    consumer.thread.join(5)
    report["close_ended_it_s"] = time.monotonic() - started
    report["consumer_alive"] = consumer.thread.is_alive()

    # SIGINT while the main thread is the consumer, asleep in its own read
    watcher = netnotify.watch("route", family=socket.AF_INET)
    main_tid = threading.get_native_id()
    for i in range(103, 105):
        threading.Timer(0.2 * (i - 102), route_add, (i,)).start()

    def interrupt() -> None:
        report["main_sleeps_in"] = thread_in(main_tid, "recvmmsg")
        report["sent_at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(1.0, interrupt).start()
    got = 0
    try:
        for _event in watcher:
            got += 1
    except KeyboardInterrupt:
        report["interrupt_after_s"] = time.monotonic() - report["sent_at"]
    report["got_before_interrupt"] = got
    watcher.close()
    print(json.dumps(report))


def route_batch(first: int, count: int) -> None:
    lines = (f"route add 10.79.{i // 256}.{i % 256}/32 via 10.77.0.2\n" for i in range(first, first + count))
    ip("-batch -", stdin="".join(lines))


def stream() -> None:
    report: dict[str, Any] = {}
    link_up()
    delivered_on: dict[int, int] = {}  # thread ident -> changes delivered (normalized) on it

    def counting(callback: Callable[[Any, Any, Any], object], *args: Any) -> None:
        ident = threading.get_ident()
        delivered_on[ident] = delivered_on.get(ident, 0) + 1
        callback(*args)

    hook_watch_rows(counting)
    watcher = netnotify.watch("route", family=socket.AF_INET)
    stop_at = [0]  # the consumer stops after this many events, until `go`
    go = threading.Event()

    def after(count: int) -> None:
        if count == stop_at[0]:
            go.wait()  # it stops coming back, with the socket it keeps

    consumer = RouteConsumer(watcher, after)

    def wait_seen(count: int, timeout: float = 20.0) -> bool:
        return consumer.wait_seen(count, timeout)

    route_add(0)  # the first wait asks for the socket: its event comes through the dispatcher
    report["first"] = wait_seen(1)
    tid = consumer.tid
    others = [t for t in syscalls() if t not in (tid, threading.get_native_id())]
    report["other_threads"] = len(others)
    dispatcher = others[0]

    # a burst taken event after event: the consumer keeps its socket between its reads, and the dispatcher,
    # which looks at it every 2 ms meanwhile, reads none of it
    before = context_switches(dispatcher)
    delivered_on.clear()
    timeouts: set[int | None] = set()
    sender = threading.Thread(target=route_batch, args=(1, 3000))
    sender.start()
    deadline = time.monotonic() + 20
    while (sender.is_alive() or not wait_seen(3001, timeout=0)) and time.monotonic() < deadline:
        timeouts.add(epoll_timeout_of(dispatcher))  # what the dispatcher waits with meanwhile
        time.sleep(0.0005)
    sender.join()
    report["burst_seen"] = wait_seen(3001)
    report["dispatcher_switches_in_burst"] = context_switches(dispatcher) - before
    report["dispatcher_timeouts_in_burst"] = sorted(t for t in timeouts if t is not None)
    report["delivered_by_consumer"] = delivered_on.pop(consumer.ident, 0)
    report["delivered_by_others"] = sum(delivered_on.values())

    # nothing changes: the consumer sleeps in its read, the dispatcher without a timeout, and stays asleep
    report["consumer_sleeps_in"] = thread_in(tid, "recvmmsg")
    time.sleep(0.1)
    report["dispatcher_timeout_idle"] = epoll_timeout_of(dispatcher)
    before = context_switches(dispatcher)
    time.sleep(1.0)
    report["dispatcher_switches_idle"] = context_switches(dispatcher) - before

    # the consumer stops coming back right after a burst: the dispatcher takes the socket back and reads
    stop_at[0] = 4001  # read by the consumer's thread only after the next change
    route_batch(3001, 1000)
    report["second_burst_seen"] = wait_seen(4001)
    time.sleep(0.05)
    route_batch(4001, 200)
    time.sleep(0.5)
    report["queued_while_away"] = len(watcher)
    go.set()
    report["all_seen"] = wait_seen(4201)
    report["in_order"] = consumer.in_order(4201)
    watcher.close()
    consumer.thread.join(5)
    report["consumer_alive"] = consumer.thread.is_alive()
    print(json.dumps(report))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def watch_async() -> None:
    report: dict[str, Any] = {}
    link_up()
    loop_thread = threading.get_ident()
    readers: list[str] = []  # per change the watcher took in: read on the loop's thread, or another's

    def on_row(callback: Callable[[Any, Any, Any], object], *args: Any) -> None:
        readers.append("loop" if threading.get_ident() == loop_thread else "other")
        callback(*args)

    hook_watch_rows(on_row)
    # The dispatcher's own descriptors (its epoll set, its eventfd) stay once it started: what the watcher
    # adds must not. The dispatcher closes a cancelled registration's sockets soon after the cancel.
    netnotify.notify_route_change2(socket.AF_INET, lambda *args: None).cancel()
    fds_before = -1
    while open_fds() != fds_before:
        fds_before = open_fds()
        time.sleep(0.2)

    def added(event: object, i: int) -> bool:
        return (
            isinstance(event, netnotify.RouteEvent) and str(event.row.destination_prefix) == f"10.79.0.{i}/32"
        )

    async def main() -> None:
        watcher = netnotify.watch("route", family=socket.AF_INET)
        # Waiting: the first wait only asks for the socket; then the loop reads it.
        ok = True
        for i in range(10):
            threading.Timer(0.05, route_add, (i,)).start()
            ok = ok and added(await watcher.aget(timeout=5), i)
        report["waited_ten"] = ok
        report["last_five_read_by"] = readers[-5:]
        task = asyncio.ensure_future(watcher.aget())
        await asyncio.sleep(0.2)
        report["waiting_others_sleep_in"] = sleeping_in()  # the dispatcher's epoll_wait, not recvmmsg

        # Busy awaiting something else: the loop's next read gives the socket back, the dispatcher reads.
        threading.Timer(0.05, route_add, (10,)).start()
        report["eleventh"] = added(await task, 10)
        before = len(readers)

        def add_fifty() -> None:
            for i in range(11, 61):
                route_add(i)

        adder = threading.Thread(target=add_fifty)
        adder.start()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(adder.join)
        await asyncio.sleep(0.3)
        report["queued_while_busy"] = len(watcher)
        busy = readers[before:]
        report["busy_read_by"] = busy[: busy.index("other")] + sorted(set(busy[busy.index("other") :]))
        got = [await watcher.aget(timeout=5) for _ in range(50)]
        report["busy_in_order"] = all(added(event, 11 + n) for n, event in enumerate(got))

        # The loop's thread blocks in get() while a coroutine of it waits (the socket lent): not a hang.
        waiting = asyncio.ensure_future(watcher.aget())
        await asyncio.sleep(0.2)
        threading.Timer(0.3, route_add, (61,)).start()
        started = time.monotonic()
        try:
            report["sync_get_in_loop"] = added(watcher.get(timeout=5), 61)
        except TimeoutError:
            report["sync_get_in_loop"] = "timeout"
        report["sync_get_s"] = time.monotonic() - started
        threading.Timer(0.1, route_add, (62,)).start()
        report["waiting_after_sync_get"] = added(await asyncio.wait_for(waiting, 5), 62)

        # A wait that times out gives the socket back: with the loop blocked, the dispatcher reads.
        try:
            await watcher.aget(timeout=0.2)
            report["timed_out"] = False
        except TimeoutError:
            report["timed_out"] = True
        before = len(readers)
        route_add(63)
        time.sleep(0.5)  # the loop is blocked: only the dispatcher can read
        report["after_timeout_queued"] = len(watcher)
        report["after_timeout_read_by"] = readers[before:]
        report["after_timeout_event"] = added(await watcher.aget(timeout=5), 63)

        # close() from another thread while the socket is lent ends the wait.
        waiting = asyncio.ensure_future(watcher.aget())
        await asyncio.sleep(0.2)
        started = time.monotonic()
        threading.Thread(target=watcher.close).start()
        try:
            await asyncio.wait_for(waiting, 5)
            report["closed_wait"] = "returned"
        except netnotify.WatcherClosed:
            report["closed_wait"] = "closed"
        report["close_ended_it_s"] = time.monotonic() - started

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while open_fds() > fds_before and time.monotonic() < deadline:  # the dispatcher closes the sockets
        time.sleep(0.05)
    report["fds_leaked"] = open_fds() - fds_before

    # A loop stopped in the iteration in which a wait ended, the socket still lent: get() takes it back.
    watcher = netnotify.watch("route", family=socket.AF_INET)
    loop = asyncio.new_event_loop()

    async def one(i: int) -> bool:
        threading.Timer(0.05, route_add, (i,)).start()
        event = await watcher.aget(timeout=5)
        asyncio.get_running_loop().stop()
        return added(event, i)

    results = []
    for i in range(64, 67):
        task = loop.create_task(one(i))
        loop.run_forever()
        results.append(task.result())
    report["stopped_loop_waits"] = results
    report["lent_while_stopped"] = watcher._lent
    before = len(readers)
    threading.Timer(0.2, route_add, (67,)).start()
    try:
        report["get_after_stop"] = added(watcher.get(timeout=5), 67)
    except TimeoutError:
        report["get_after_stop"] = "timeout"
    report["after_stop_read_by"] = readers[before:]
    watcher.close()
    loop.close()

    # asyncio.run() twice: the second loop takes the socket from the first, closed, and reads it itself.
    watcher = netnotify.watch("route", family=socket.AF_INET)

    async def three(first: int) -> list[bool]:
        seen = []
        for i in range(first, first + 3):
            threading.Timer(0.05, route_add, (i,)).start()
            seen.append(added(await watcher.aget(timeout=5), i))
        return seen

    report["first_run"] = asyncio.run(three(68))
    report["lent_after_first_run"] = watcher._lent
    route_add(71)  # between the runs: nobody reads it until the second run does
    before = len(readers)

    async def second() -> list[bool]:
        return [added(await watcher.aget(timeout=5), 71), *await three(72)]

    report["second_run"] = asyncio.run(second())
    report["second_run_read_by"] = readers[before:]
    watcher.close()
    print(json.dumps(report))


if __name__ == "__main__":
    {"dispatcher": dispatcher, "watch": watch, "stream": stream, "async": watch_async}[sys.argv[1]]()
