"""The watcher's doorbell (Linux): an eventfd whose ring, from a callback in a delivery session, is written
only once the dispatcher has dropped the GIL, so that the consumer it wakes does not wait for the GIL."""

from __future__ import annotations

import asyncio
import gc
import os
import select
import socket
import sys
import threading
import time

import pytest
from nettest import Lan, NetNS

import netnotify
from netnotify import _netnotify as _nn

pytestmark = pytest.mark.linux


if sys.platform == "linux":  # the doorbell exists on Linux only; elsewhere this file holds no test

    def readable(fd: int, timeout: float) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))

    def test_ring_outside_a_callback_writes_at_once() -> None:
        bell = _nn._Doorbell()
        assert bell.take() == 0
        bell.ring()
        bell.ring(4)
        assert bell.take() == 5  # a counter: the reads add up the rings
        assert bell.take() == 0

    def test_semaphore_bell_gives_one_token_per_read() -> None:
        bell = _nn._Doorbell(semaphore=True)
        bell.ring(2)
        assert [bell.take(), bell.take(), bell.take()] == [1, 1, 0]

    @pytest.mark.parametrize(
        ("count", "error"),
        [
            (-1, OverflowError),
            (2**32, OverflowError),
            (2**100, OverflowError),
            ("1", TypeError),
            (1.0, TypeError),
            (None, TypeError),
        ],
    )
    def test_bad_ring_counts_raise(count: object, error: type[Exception]) -> None:
        bell = _nn._Doorbell()
        with pytest.raises(error):
            bell.ring(count)  # type: ignore[arg-type]
        assert bell.take() == 0

    def test_ring_from_a_callback_is_written_when_the_session_ends(ns: NetNS, lan: Lan) -> None:
        bell = _nn._Doorbell()
        seen: list[int] = []
        done = threading.Event()

        def callback(context: object, row: object, notification_type: netnotify.MibNotificationType) -> None:
            if row is None or done.is_set():
                return
            bell.ring()
            seen.append(bell.take())  # not written yet: the dispatcher still holds the GIL for this burst
            done.set()

        handle = netnotify.notify_route_change2(socket.AF_INET, callback)
        try:
            ns.ip(f"route add 10.77.0.0/24 via {lan.gateway4}")
            assert done.wait(5), "no route callback"
            assert readable(bell.fileno(), 5), "the deferred ring never came"
            assert seen == [0]
            assert bell.take() == 1
        finally:
            handle.cancel()

    def test_bell_outlives_its_python_object_until_the_session_rang_it(ns: NetNS, lan: Lan) -> None:
        """A callback that rings a doorbell and drops the last reference to it: the session's reference keeps
        the eventfd open until its deferred write is done (no write to a closed, or reused, descriptor)."""
        bells = [_nn._Doorbell()]
        fds: list[int] = []
        done = threading.Event()

        def callback(context: object, row: object, notification_type: netnotify.MibNotificationType) -> None:
            if row is None or done.is_set():
                return
            bell = bells.pop()
            fds.append(bell.fileno())
            bell.ring()
            del bell  # the Python object goes; the session still holds the eventfd
            reused = _nn._Doorbell()  # would get the same descriptor number if it had been closed
            fds.append(reused.fileno())
            bells.append(reused)
            done.set()

        handle = netnotify.notify_route_change2(socket.AF_INET, callback)
        try:
            ns.ip(f"route add 10.78.0.0/24 via {lan.gateway4}")
            assert done.wait(5), "no route callback"
        finally:
            handle.cancel()  # returns once the session ended, and so after its deferred writes
        assert fds[0] != fds[1], "the eventfd was closed while a ring was pending"
        assert bells[0].take() == 0, "the deferred ring went to another descriptor"

    def test_wait_takes_what_was_rung_or_times_out() -> None:
        bell = _nn._Doorbell()
        bell.ring(3)
        assert bell.wait(0) == 3  # rung already: no wait
        assert bell.wait(0) == 0
        started = time.monotonic()
        assert bell.wait(60) == 0  # nobody rings: timed out after 60 ms
        assert 0.05 <= time.monotonic() - started < 5
        semaphore = _nn._Doorbell(semaphore=True)
        semaphore.ring(2)
        assert [semaphore.wait(0), semaphore.wait(0), semaphore.wait(0)] == [1, 1, 0]

    def test_wait_sleeps_without_the_gil_until_rung() -> None:
        bell = _nn._Doorbell()
        taken: list[int] = []
        waiter = threading.Thread(target=lambda: taken.append(bell.wait(None)))
        waiter.start()
        spins = 0
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # this thread runs Python meanwhile: the waiter holds no GIL
            spins += 1
        assert waiter.is_alive()
        assert spins > 1000
        bell.ring(2)
        waiter.join(5)
        assert not waiter.is_alive()
        assert taken == [2]

    def test_wait_keeps_the_eventfd_when_closed_meanwhile() -> None:
        bell = _nn._Doorbell()
        fd = bell.fileno()
        taken: list[int] = []
        waiter = threading.Thread(target=lambda: taken.append(bell.wait(300)))
        waiter.start()
        time.sleep(0.05)
        bell.close()  # the waiter holds the eventfd: it is not closed (nor reused) under the poll
        other = _nn._Doorbell()
        assert other.fileno() != fd
        waiter.join(5)
        assert taken == [0]
        other.close()

    @pytest.mark.parametrize(
        ("timeout", "error"), [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (2**70, OverflowError)]
    )
    def test_bad_wait_timeouts_raise(timeout: object, error: type[Exception]) -> None:
        with pytest.raises(error):
            _nn._Doorbell().wait(timeout)  # type: ignore[arg-type]

    def test_a_signal_handler_that_raises_interrupts_wait() -> None:
        import signal

        bell = _nn._Doorbell()

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                bell.wait(10_000)
            assert time.monotonic() - started < 5
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def test_a_closed_doorbell_refuses_use_and_close_is_idempotent() -> None:
        bell = _nn._Doorbell()
        bell.close()
        bell.close()
        for use in (bell.ring, bell.take, bell.fileno, bell.wait):
            with pytest.raises(ValueError, match="closed"):
                use()

    def test_closing_a_doorbell_inside_the_callback_keeps_the_ring(ns: NetNS, lan: Lan) -> None:
        """close() in the callback, after a deferred ring: the eventfd lives on until the session wrote it."""
        bell = _nn._Doorbell()
        bell_fd = bell.fileno()
        fresh: list[_nn._Doorbell] = []
        done = threading.Event()

        def callback(context: object, row: object, notification_type: netnotify.MibNotificationType) -> None:
            if row is None or done.is_set():
                return
            bell.ring()
            bell.close()
            fresh.append(_nn._Doorbell())  # would take bell_fd if close() had closed the eventfd
            done.set()

        handle = netnotify.notify_route_change2(socket.AF_INET, callback)
        try:
            ns.ip(f"route add 10.79.0.0/24 via {lan.gateway4}")
            assert done.wait(5), "no route callback"
        finally:
            handle.cancel()
        assert fresh[0].fileno() != bell_fd, "the eventfd was closed while a ring was pending"
        assert fresh[0].take() == 0, "the deferred ring went to another descriptor"

    def _open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def test_a_closed_watcher_lets_its_eventfds_go_without_the_garbage_collector(ns: NetNS, lan: Lan) -> None:
        gc.collect()
        before = _open_fds()
        gc.disable()
        try:
            for _ in range(20):
                watcher = netnotify.watch("route")
                with pytest.raises(TimeoutError):
                    watcher.get(timeout=0.01)  # makes the bell of blocked get() calls

                async def wait_async(w: netnotify.Watcher = watcher) -> None:
                    with pytest.raises(TimeoutError):
                        await w.aget(timeout=0.01)  # makes the loop bell

                asyncio.run(wait_async())
                cycle: list[object] = [watcher]
                cycle.append(cycle)  # garbage only the collector could free
                watcher.close()
                del watcher, cycle
            # the dispatcher closes a cancelled registration's sockets a moment later
            deadline = time.monotonic() + 5
            while _open_fds() > before and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _open_fds() <= before, "closed watchers kept eventfds until a garbage collection"
        finally:
            gc.enable()

    def test_a_thread_blocked_in_get_keeps_the_bell_until_it_leaves(ns: NetNS, lan: Lan) -> None:
        watcher = netnotify.watch("route")
        outcome: list[BaseException] = []

        def consume() -> None:
            try:
                watcher.get(timeout=10)
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=consume)
        thread.start()
        deadline = time.monotonic() + 5
        while watcher._sleepers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watcher._sleepers == 1
        watcher.close()
        thread.join(5)
        assert not thread.is_alive(), "get() did not return after close()"
        assert len(outcome) == 1, outcome
        assert isinstance(outcome[0], netnotify.WatcherClosed), outcome
        assert watcher._bell is None, "the last sleeper did not let the bell go"
