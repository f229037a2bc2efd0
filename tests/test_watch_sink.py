"""_PlainSink (Linux, csrc/nn_sink.c): a plain watcher's normalization and consumer loop in C.

The Python code of the watcher (Watcher._normalize, _get) is the reference: each test here runs the same
changes through both on look-alike watchers and compares what they queue and what they keep, so the C copy
cannot drift from it unnoticed. The real-kernel behaviour of the watcher that uses it is tested by the other
test_watch*.py files (on Linux every plain watcher goes through it).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from collections import deque
from typing import Any

import pytest
from nettest import Lan, NetNS

import netnotify
from netnotify import Change, Kind, MibNotificationType

pytestmark = pytest.mark.linux

ADD = MibNotificationType.ADD_INSTANCE
CHANGED = MibNotificationType.PARAMETER_NOTIFICATION
DELETE = MibNotificationType.DELETE_INSTANCE
INITIAL = MibNotificationType.INITIAL_NOTIFICATION


def address(text: str, index: int = 2, **members: Any) -> netnotify.MibUnicastIpAddressRow:
    return netnotify.MibUnicastIpAddressRow(
        address=ipaddress.ip_address(text), interface_index=index, **members
    )


def route(prefix: str, hop: str = "10.1.0.2", **members: Any) -> netnotify.MibIpForwardRow2:
    return netnotify.MibIpForwardRow2(
        destination_prefix=ipaddress.ip_network(prefix),
        next_hop=ipaddress.ip_address(hop),
        interface_index=2,
        **members,
    )


if sys.platform == "linux":  # _PlainSink exists on Linux only; elsewhere this file holds no test
    from netnotify import _netnotify as _nn
    from netnotify import _watch

    class LookAlike:
        """What _normalize, _on_row and _get read of a watcher, and the calls they make on it, recorded."""

        def __init__(self, *, ignore_lifetimes: bool = False, known: tuple[Kind, ...] = ()) -> None:
            self._lock = threading.RLock()
            self._closed = False
            self._held: list[tuple[Any, ...]] | None = None
            self._here: Any = None
            self._here_reader = 0
            self._lent = False
            self._waiting = 0
            self._async_waiters: list[object] = []
            self._state: dict[Any, Any] = {}
            self._state_known = set(known)
            self._queue: deque[Any] = deque()
            self._plain = True
            self._settle = None
            self._ignore_lifetimes = ignore_lifetimes
            self.calls: list[tuple[Any, ...]] = []

        def _wake(self) -> None:
            self.calls.append(("wake",))

        def _poke_reader(self) -> None:
            self.calls.append(("poke",))

        def _on_row(self, kind: Kind, row: Any, ntype: MibNotificationType) -> None:
            self.calls.append(("on_row", kind, row, ntype))

    def sink_for(watcher: LookAlike) -> _nn._PlainSink:
        return _nn._PlainSink(
            watcher,
            _watch._EVENT_CLASS,
            (Change.CHANGE, Change.ADD, Change.DELETE),
            _watch._only_lifetimes_differ,
            watcher._ignore_lifetimes,
        )

    def python_on_row(watcher: LookAlike, kind: Kind, row: Any, ntype: MibNotificationType) -> None:
        """Watcher._on_row of a Linux plain watcher (rows arrive complete), on the look-alike."""
        change = _watch._CHANGES.get(ntype)
        if row is None or change is None:
            return
        with watcher._lock:
            if watcher._closed:
                return
            if watcher._held is not None:
                watcher._on_row(kind, row, ntype)
                return
            _watch.Watcher._normalize(watcher, kind, change, row, time.time(), True)  # type: ignore[arg-type]

    def summary(event: Any) -> tuple[Any, ...]:
        return (type(event), event.change, event.row, event.complete)

    CHANGES: list[tuple[Kind, Any, MibNotificationType]] = [
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=100), ADD),  # new: add
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=100), ADD),  # the same again: nothing
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=90), CHANGED),  # lifetime only
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=90, on_link_prefix_length=24), CHANGED),  # a change
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=90), ADD),  # an add of a known one: a change
        (Kind.ADDRESS, address("10.0.0.2"), CHANGED),  # a change of an unknown one: an add
        (Kind.ADDRESS, address("10.0.0.1", valid_lifetime=5), DELETE),  # delete: the row the state had
        (Kind.ADDRESS, address("10.0.0.1"), DELETE),  # a delete of an object never had
        (Kind.ADDRESS, address("10.0.0.1", index=3), ADD),  # same address, another interface: another object
        (Kind.ADDRESS, address("2001:db8::1"), ADD),
        (Kind.ADDRESS, address("10.0.0.9"), INITIAL),  # not a change
        (Kind.ADDRESS, None, ADD),  # no row: nothing
        (Kind.ROUTE, route("10.9.0.0/24"), ADD),
        (Kind.ROUTE, route("10.9.0.0/24", hop="10.1.0.3"), ADD),  # another next hop: another object
        (Kind.ROUTE, route("10.9.0.0/24", metric=7), CHANGED),
        (Kind.ROUTE, route("10.9.0.0/24"), DELETE),
        (Kind.ROUTE, route("10.9.9.0/24"), DELETE),  # unknown, in a kind whose table was not read: reported
    ]

    @pytest.mark.parametrize(
        "ignore_lifetimes", [False, True], ids=["lifetimes-reported", "lifetimes-ignored"]
    )
    def test_the_sink_queues_and_keeps_what_watcher_normalize_does(ignore_lifetimes: bool) -> None:
        python = LookAlike(ignore_lifetimes=ignore_lifetimes, known=(Kind.ADDRESS,))
        c = LookAlike(ignore_lifetimes=ignore_lifetimes, known=(Kind.ADDRESS,))
        sink = sink_for(c)
        before = time.time()
        for kind, row, ntype in CHANGES:
            python_on_row(python, kind, row, ntype)
            sink(kind, row, ntype)
            assert [summary(e) for e in c._queue] == [summary(e) for e in python._queue], (kind, row, ntype)
            assert c._state == python._state
        after = time.time()
        changes = [event.change for event in c._queue]
        # The sequence exercises every branch (as the reference treats it)
        expected = [Change.ADD] + ([] if ignore_lifetimes else [Change.CHANGE]) + [Change.CHANGE] * 2
        expected += [Change.ADD, Change.DELETE, Change.ADD, Change.ADD, Change.ADD, Change.ADD, Change.CHANGE]
        expected += [Change.DELETE, Change.DELETE]
        assert changes == expected
        assert all(before <= event.time <= after for event in c._queue)
        # A queued event woke whoever waited: here nobody did, and no other thread read the socket
        assert c.calls == python.calls == []

    def test_an_event_the_sink_makes_is_an_ordinary_event() -> None:
        watcher = LookAlike()
        sink_for(watcher)(Kind.ROUTE, route("10.9.0.0/24"), ADD)
        event = watcher._queue[0]
        assert isinstance(event, netnotify.RouteEvent)
        assert event == netnotify.RouteEvent(Change.ADD, route("10.9.0.0/24"), event.time, True)
        assert hash(event) == hash(netnotify.RouteEvent(Change.ADD, route("10.9.0.0/24"), event.time, True))
        assert event.kind is Kind.ROUTE
        with pytest.raises(AttributeError):  # still frozen
            event.change = Change.DELETE  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("setup", "expected"),
        [
            ({"_waiting": 1}, [("wake",)]),
            ({"_async_waiters": [object()]}, [("wake",)]),
            ({"_here_reader": 1}, [("poke",)]),  # another thread's ident (no thread has 1)
            ({"_here_reader": threading.get_ident()}, []),  # this thread reads: it finds the event itself
            ({"_here_reader": -1}, []),  # poked already
        ],
        ids=["blocked-get", "async-waiter", "other-reader", "own-read", "poked"],
    )
    def test_a_queued_event_wakes_as_normalize_does(
        setup: dict[str, Any], expected: list[tuple[str]]
    ) -> None:
        python, c = LookAlike(), LookAlike()
        for watcher in (python, c):
            for name, value in setup.items():
                setattr(watcher, name, value)
        python_on_row(python, Kind.ROUTE, route("10.9.0.0/24"), ADD)
        sink_for(c)(Kind.ROUTE, route("10.9.0.0/24"), ADD)
        assert c.calls == python.calls == expected
        # nothing new: no wake
        sink_for(c)(Kind.ROUTE, route("10.9.0.0/24"), ADD)
        assert c.calls == expected

    def test_a_closed_watcher_takes_nothing_and_a_starting_one_holds_the_change_back() -> None:
        watcher = LookAlike()
        sink = sink_for(watcher)
        watcher._closed = True
        sink(Kind.ROUTE, route("10.9.0.0/24"), ADD)
        assert not watcher._queue
        assert not watcher._state
        assert watcher.calls == []
        watcher._closed = False
        watcher._held = []
        row = route("10.9.0.0/24")
        sink(Kind.ROUTE, row, ADD)
        assert watcher.calls == [("on_row", Kind.ROUTE, row, ADD)]  # Watcher._on_row holds it back
        assert not watcher._queue
        assert not watcher._state

    def test_the_sink_refuses_bad_input_with_a_clear_exception() -> None:
        watcher = LookAlike()
        sink = sink_for(watcher)
        with pytest.raises(TypeError):
            sink(Kind.ROUTE, route("10.9.0.0/24"))  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="notification type must be an int"):
            sink(Kind.ROUTE, route("10.9.0.0/24"), "add")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not a kind this watcher has"):
            sink("teredo", route("10.9.0.0/24"), ADD)
        with pytest.raises(TypeError):
            sink(Kind.ROUTE, "not a row", ADD)
        with pytest.raises(TypeError):
            sink(Kind.ROUTE, route("10.9.0.0/24"), ADD, extra=1)  # type: ignore[call-arg]
        sink(Kind.ROUTE, route("10.9.0.0/24"), 2**80)  # not a notification type: ignored
        assert not watcher._queue
        assert not watcher._state
        assert lock_is_free(watcher._lock)  # every failure let it go
        with pytest.raises(TypeError):
            _nn._PlainSink(watcher, [], (1, 2, 3), _watch._only_lifetimes_differ, False)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="CHANGE, ADD, DELETE"):
            _nn._PlainSink(watcher, {}, (1, 2), _watch._only_lifetimes_differ, False)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callable"):
            _nn._PlainSink(watcher, {}, (1, 2, 3), None, False)  # type: ignore[arg-type]
        with pytest.raises(AttributeError):
            _nn._PlainSink(object(), {}, (1, 2, 3), _watch._only_lifetimes_differ, False)
        watcher._state = []  # type: ignore[assignment]
        with pytest.raises(TypeError, match="_state must be a dict"):
            sink_for(watcher)

    def lock_is_free(lock: Any) -> bool:
        """Whether another thread can take lock now (it lets it go again)."""
        taken: list[bool] = []

        def take() -> None:
            taken.append(lock.acquire(False))
            if taken[0]:
                lock.release()

        other = threading.Thread(target=take)
        other.start()
        other.join()
        return taken[0]

    class Socket:
        """A stand-in for the registration handle of take(): each read delivers the next change."""

        def __init__(self, watcher: LookAlike, changes: list[Any], result: Any = True) -> None:
            self.watcher = watcher
            self.sink = sink_for(watcher)
            self.changes = changes
            self.result = result
            self.readers: list[tuple[int, bool]] = []

        def _read_here(self) -> Any:
            self.readers.append(
                (self.watcher._here_reader, lock_is_free(self.watcher._lock))
            )  # during the read
            if isinstance(self.result, BaseException):
                raise self.result
            if self.changes:
                self.sink(*self.changes.pop(0))
            return self.result

    def test_take_pops_or_reads_on_this_thread_until_something_is_queued() -> None:
        watcher = LookAlike(known=(Kind.ROUTE,))
        nothing = [(Kind.ROUTE, route("10.9.0.0/24"), INITIAL), (Kind.ROUTE, route("10.9.0.0/24"), DELETE)]
        here = Socket(watcher, [*nothing, (Kind.ROUTE, route("10.9.1.0/24"), ADD)])
        watcher._here = here
        event = here.sink.take()
        assert event is not None
        assert event.row == route("10.9.1.0/24")  # the first two reads queued nothing
        me = threading.get_ident()
        assert here.readers == [(me, True), (me, True), (me, True)]  # read as this thread, the lock let go
        assert watcher._here_reader == 0
        watcher._queue.extend(["a", "b"])
        assert here.sink.take() == "a"
        assert here.sink.take() == "b"
        assert len(here.readers) == 3  # popped without a read

    @pytest.mark.parametrize("state", ["_closed", "_lent", "_here_reader", "no-socket", "dispatcher-reads"])
    def test_take_leaves_to_get_what_it_does_not_handle(state: str) -> None:
        watcher = LookAlike()
        reads = state == "dispatcher-reads"  # the socket cannot be taken: its read returns False at once
        here = Socket(watcher, [] if reads else [(Kind.ROUTE, route("10.9.0.0/24"), ADD)], result=not reads)
        watcher._here = None if state == "no-socket" else here
        if state.startswith("_"):
            setattr(watcher, state, 5 if state == "_here_reader" else True)
        assert here.sink.take() is None
        assert here.readers == ([(threading.get_ident(), True)] if reads else [])
        assert watcher._here_reader == (5 if state == "_here_reader" else 0)
        watcher._queue.append("queued")
        assert here.sink.take() == "queued"  # what is queued comes first, whatever the state

    def test_an_exception_in_the_read_leaves_the_watcher_as_it_was() -> None:
        watcher = LookAlike()
        here = Socket(watcher, [], result=KeyboardInterrupt())
        watcher._here = here
        with pytest.raises(KeyboardInterrupt):
            here.sink.take()
        assert watcher._here_reader == 0
        assert lock_is_free(watcher._lock)


@pytest.mark.parametrize(
    ("arguments", "fast"),
    [
        ({}, True),
        ({"settle": 0.1}, False),
        ({"backpressure": "bounded"}, False),
        ({"backpressure": "latest"}, False),
    ],
    ids=["plain", "settle", "bounded", "latest"],
)
def test_a_plain_watcher_normalizes_and_reads_in_c(ns: NetNS, arguments: dict[str, Any], fast: bool) -> None:
    """Only the plain watcher takes the C path; on every path, two routes' adds arrive as events."""
    lan = Lan.create(ns)
    with netnotify.watch("route", family=socket.AF_INET, **arguments) as watcher:
        assert (type(watcher._sink).__name__ == "_PlainSink") is fast
        assert (watcher._take is not None) is fast
        ns.ip(f"route add 10.77.0.0/24 via {lan.gateway4} dev v0")
        ns.ip(f"route add 10.78.0.0/24 via {lan.gateway4} dev v0")  # not a delete: settle and latest merge
        guard = threading.Timer(10, watcher.close)  # a stuck consumer fails the test instead of hanging it
        guard.start()
        changes = []
        for event in watcher:  # iteration: take() on the plain watcher
            changes.append(event)
            if len(changes) == 2:
                break
        guard.cancel()
    assert [(e.change, str(e.row.destination_prefix)) for e in changes] == [  # type: ignore[union-attr]
        (Change.ADD, "10.77.0.0/24"),
        (Change.ADD, "10.78.0.0/24"),
    ]
