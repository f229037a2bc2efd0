"""netnotify.watch() with asyncio (docs/watch.md): `async for`, aget(), close() from a task, a free loop.

Each test runs its coroutine with asyncio.run on a thread of its own (started from the test's thread, so in
the test's network namespace) and joins it with a timeout: a loop that a watcher blocks cannot hang the run.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from nettest import BackgroundCall, Lan, NetNS
from test_watch import V4_ADDRESS, describe, is_event

import netnotify
from netnotify import Change

pytestmark = pytest.mark.linux


def run_async(
    main: Callable[[], Coroutine[Any, Any, object]],
    timeout: float,
    watchers: list[netnotify.Watcher] | None = None,
) -> Any:
    """asyncio.run(main()) on a thread, at most timeout seconds; its result, or what it raised.

    When it overruns, the watchers it made (appended to `watchers`) are closed from here, to unblock it.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:  # re-raised below, on the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="watch-asyncio")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for watcher in watchers or []:
            watcher.close()
        thread.join(2)
        pytest.fail(f"the event loop still ran after {timeout} s (blocked?)", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def in_thread(ns: NetNS, delay: float, command: str) -> BackgroundCall:
    """Runs `ip COMMAND` after `delay` seconds on another thread (while the loop waits)."""

    def run() -> None:
        time.sleep(delay)
        ns.ip(command)

    return BackgroundCall(run)


def test_async_for_receives_changes_made_by_a_thread(ns: NetNS, lan: Lan) -> None:
    async def main() -> list[netnotify.Event]:
        seen: list[netnotify.Event] = []
        async with netnotify.watch("address") as watcher:
            adder = in_thread(ns, 0.2, f"addr add {V4_ADDRESS} dev v0")

            async def consume() -> None:
                async for event in watcher:
                    seen.append(event)
                    if is_event(netnotify.AddressEvent, Change.ADD, address=V4_ADDRESS.ip)(event):
                        return

            try:
                await asyncio.wait_for(consume(), 5)
            except TimeoutError:
                pytest.fail(f"no ADD of {V4_ADDRESS.ip} within 5 s; got:\n{describe(seen)}")
            adder.thread.join(5)
            assert adder.error is None, adder.error
        assert watcher.closed  # async with closed it
        return seen

    seen = run_async(main, 15)
    event = seen[-1]
    assert isinstance(event, netnotify.AddressEvent)
    assert event.row.on_link_prefix_length == 24
    assert event.complete


def test_aget_returns_the_next_event_and_times_out(ns: NetNS, lan: Lan) -> None:
    async def main() -> tuple[float, netnotify.Event]:
        async with netnotify.watch("route", family=socket.AF_INET) as watcher:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await watcher.aget(timeout=0.2)
            elapsed = loop.time() - started
            with pytest.raises(TimeoutError):
                await watcher.aget(timeout=0)
            adder = in_thread(ns, 0.1, f"route add 10.56.0.0/24 via {lan.gateway4} dev v0")
            event = await watcher.aget(timeout=5)
            adder.thread.join(5)
            return elapsed, event

    elapsed, event = run_async(main, 15)
    assert 0.19 <= elapsed < 2.0, elapsed
    assert is_event(
        netnotify.RouteEvent, Change.ADD, destination_prefix=ipaddress.IPv4Network("10.56.0.0/24")
    )(event), event


def test_close_from_a_task_ends_async_for(ns: NetNS, lan: Lan) -> None:
    watchers: list[netnotify.Watcher] = []

    async def main() -> tuple[float, list[netnotify.Event]]:
        watcher = netnotify.watch()
        watchers.append(watcher)
        got: list[netnotify.Event] = []
        ended: list[float] = []

        async def consume() -> None:
            async for event in watcher:
                got.append(event)
            ended.append(time.monotonic())

        async def close_later() -> float:
            await asyncio.sleep(0.3)
            closing = time.monotonic()
            watcher.close()
            return closing

        consumer = asyncio.create_task(consume())
        closing = await close_later()
        try:
            await asyncio.wait_for(consumer, 2)
        except TimeoutError:
            pytest.fail("`async for` went on 2 s after close() from a task")
        assert watcher.closed
        with pytest.raises(netnotify.WatcherClosed):
            await watcher.aget(timeout=1)
        return ended[0] - closing, got

    delay, got = run_async(main, 15, watchers)
    assert delay < 1.0, f"`async for` ended {delay:.2f} s after close()"
    assert got == [], describe(got)


def test_close_from_a_task_wakes_a_waiting_aget(ns: NetNS, lan: Lan) -> None:
    watchers: list[netnotify.Watcher] = []

    async def main() -> float:
        watcher = netnotify.watch("route")
        watchers.append(watcher)
        waiter = asyncio.create_task(watcher.aget())
        await asyncio.sleep(0.3)
        assert not waiter.done()
        closing = time.monotonic()
        watcher.close()
        with pytest.raises(netnotify.WatcherClosed):
            await asyncio.wait_for(waiter, 2)
        return time.monotonic() - closing

    assert run_async(main, 15, watchers) < 1.0


BURST = 200


def test_loop_is_never_blocked(ns: NetNS, lan: Lan) -> None:
    """A ticker task keeps ticking while `async for` waits through a quiet second, a burst, quiet again."""
    watchers: list[netnotify.Watcher] = []
    prefixes = [ipaddress.IPv4Network(f"10.57.{i}.0/24") for i in range(BURST)]

    def add_routes_later() -> None:
        time.sleep(1.0)
        ns.batch([f"route add {prefix} via {lan.gateway4} dev v0" for prefix in prefixes])

    async def main() -> tuple[list[float], list[netnotify.Event], float, float]:
        loop = asyncio.get_running_loop()
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(loop.time())
                await asyncio.sleep(0.01)

        watcher = netnotify.watch("route", family=socket.AF_INET)
        watchers.append(watcher)
        got: list[netnotify.Event] = []

        async def consume() -> None:
            wanted = set(prefixes)
            async for event in watcher:
                got.append(event)
                if isinstance(event, netnotify.RouteEvent) and event.change == Change.ADD:
                    wanted.discard(event.row.destination_prefix)
                    if not wanted:
                        return

        ticking = asyncio.create_task(ticker())
        consumer = asyncio.create_task(consume())
        start = loop.time()
        burst = BackgroundCall(add_routes_later)
        try:
            await asyncio.wait_for(consumer, 15)
        except TimeoutError:
            pytest.fail(f"the burst did not come within 15 s; got {len(got)}:\n{describe(got)}")
        burst.thread.join(5)
        assert burst.error is None, burst.error
        await asyncio.sleep(1.0)  # quiet again, with the watcher open
        stop.set()
        await ticking
        end = loop.time()
        watcher.close()
        return ticks, got, start, end

    ticks, got, start, end = run_async(main, 40, watchers)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert len(ticks) >= 2
    assert ticks[0] - start < 0.5
    assert end - ticks[-1] < 0.5
    assert max(gaps) < 0.5, f"the loop was blocked for {max(gaps):.2f} s"
    assert len(ticks) >= (end - start) / 0.01 / 4, f"{len(ticks)} ticks in {end - start:.1f} s"
    adds = [e for e in got if isinstance(e, netnotify.RouteEvent) and e.change == Change.ADD]
    assert len(adds) == BURST, describe(got)


def test_watcher_made_outside_the_loop_binds_when_awaited(ns: NetNS, lan: Lan) -> None:
    with netnotify.watch("address") as watcher:

        async def main() -> netnotify.Event:
            in_thread(ns, 0.1, f"addr add {V4_ADDRESS} dev v0")
            while True:
                event = await watcher.aget(timeout=5)
                if isinstance(event, netnotify.AddressEvent) and event.row.address == V4_ADDRESS.ip:
                    return event

        event = run_async(main, 15, [watcher])
        assert is_event(netnotify.AddressEvent, Change.ADD, address=V4_ADDRESS.ip)(event)


def test_callback_watcher_cannot_be_iterated_asynchronously(ns: NetNS) -> None:
    async def main() -> None:
        with netnotify.watch("route", callback=lambda event: None) as watcher:

            async def iterate() -> None:
                async for _ in watcher:
                    pytest.fail("iterated a callback watcher")

            with pytest.raises(TypeError):
                await iterate()
            with pytest.raises(TypeError):
                await watcher.aget(timeout=0.1)

    run_async(main, 10)
