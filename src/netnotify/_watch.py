"""netnotify.watch(): typed events over the low-level API, blocking, async or by callback.

The design in one paragraph: every OS callback turns into a raw change, which is completed (Get*Entry, where
rows arrive incomplete), then normalized under the watcher's lock against ``_state``, the watcher's view of
every object it reports (read from the tables at start, then kept by the events it emits). Normalization makes
the stream consistent (no add of a known row, no delete of an unknown one), tells add from change, enriches
deletes and drops lifetime-only noise. Normalized events go through the optional settle window, then to the
consumer: a queue (unbounded, bounded or latest-per-object) or the user's callback. See docs/watch.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import os
import queue
import select
import socket
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Protocol, Self, TypeAlias

from . import _netnotify as _nn
from ._enums import MibNotificationType
from ._errors import NotSupportedError
from ._netnotify import MibIpForwardRow2, MibIpInterfaceRow, MibUnicastIpAddressRow, NotificationHandle

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "AddressEvent",
    "Change",
    "Event",
    "InterfaceEvent",
    "Kind",
    "Overflow",
    "RouteEvent",
    "SnapshotComplete",
    "StableTableEvent",
    "TeredoPortEvent",
    "Watcher",
    "WatcherClosed",
    "watch",
]


class Kind(enum.StrEnum):
    """What a watcher can watch."""

    INTERFACE = "interface"
    ADDRESS = "address"
    ROUTE = "route"
    TEREDO = "teredo"
    STABLE = "stable"


class Change(enum.StrEnum):
    """What happened to an object."""

    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"
    SNAPSHOT = "snapshot"


class WatcherClosed(RuntimeError):
    """The watcher is closed and every event it queued has been taken."""


Row: TypeAlias = MibIpInterfaceRow | MibUnicastIpAddressRow | MibIpForwardRow2


@dataclass(frozen=True, slots=True)
class InterfaceEvent:
    """An interface (one address family of it) was added, changed, deleted, or is part of the snapshot."""

    kind: ClassVar[Kind] = Kind.INTERFACE
    change: Change
    row: MibIpInterfaceRow
    time: float
    complete: bool


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """A unicast address was added, changed, deleted, or is part of the snapshot."""

    kind: ClassVar[Kind] = Kind.ADDRESS
    change: Change
    row: MibUnicastIpAddressRow
    time: float
    complete: bool


@dataclass(frozen=True, slots=True)
class RouteEvent:
    """A route was added, changed, deleted, or is part of the snapshot."""

    kind: ClassVar[Kind] = Kind.ROUTE
    change: Change
    row: MibIpForwardRow2
    time: float
    complete: bool


@dataclass(frozen=True, slots=True)
class TeredoPortEvent:
    """The Teredo client's UDP port changed (Windows)."""

    kind: ClassVar[Kind] = Kind.TEREDO
    change: Change
    port: int
    time: float


@dataclass(frozen=True, slots=True)
class StableTableEvent:
    """The unicast address table is stable: no address is tentative (delivered once)."""

    kind: ClassVar[Kind] = Kind.STABLE
    table: tuple[MibUnicastIpAddressRow, ...]
    time: float


@dataclass(frozen=True, slots=True)
class SnapshotComplete:
    """Every snapshot row has been delivered; what follows is live (or: the resynchronisation is over)."""

    time: float


@dataclass(frozen=True, slots=True)
class Overflow:
    """A bounded queue was full: ``dropped`` changes were not queued; a resynchronisation follows."""

    dropped: int
    time: float


RowEvent: TypeAlias = InterfaceEvent | AddressEvent | RouteEvent
Event: TypeAlias = RowEvent | TeredoPortEvent | StableTableEvent | SnapshotComplete | Overflow

Backpressure: TypeAlias = Literal["unbounded", "bounded", "latest"]

_ROW_KINDS: Final = (Kind.INTERFACE, Kind.ADDRESS, Kind.ROUTE)
_DEFAULT_KINDS: Final = _ROW_KINDS
_FAMILIES: Final = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)
_LIFETIMES: Final = frozenset({"valid_lifetime", "preferred_lifetime", "age"})
# Rows from the Linux backend are complete (the kernel sends every member): no Get*Entry round trip needed.
_ROWS_ARRIVE_COMPLETE: Final = sys.platform == "linux"
_CHANGES: Final = {
    MibNotificationType.ADD_INSTANCE: Change.ADD,
    MibNotificationType.PARAMETER_NOTIFICATION: Change.CHANGE,
    MibNotificationType.DELETE_INSTANCE: Change.DELETE,
}
_OVERFLOW_MARK: Final = object()  # where, in a bounded queue, the consumer must resynchronise
# For the paths every change takes: a member looked up on an Enum class costs several times a global's lookup.
_ADD: Final = Change.ADD
_CHANGE: Final = Change.CHANGE
_DELETE: Final = Change.DELETE

Key: TypeAlias = tuple[Hashable, ...]


def _key(kind: Kind, row: Row) -> Key:
    """The identity of the object a row describes (docs/watch.md), from the row's C members."""
    return (kind, row._identity)


def _only_lifetimes_differ(old: Row, new: Row) -> bool:
    a, b = old._asdict(), new._asdict()
    return all(a[name] == b[name] for name in a if name not in _LIFETIMES)


_EVENT_CLASS: Final[dict[Kind, type[RowEvent]]] = {
    Kind.INTERFACE: InterfaceEvent,
    Kind.ADDRESS: AddressEvent,
    Kind.ROUTE: RouteEvent,
}


def _row_event(kind: Kind, change: Change, row: Row, when: float, complete: bool) -> RowEvent:
    # The row always matches its kind: both come from the same registration.
    return _EVENT_CLASS[kind](change, row, when, complete)  # type: ignore[arg-type]


def _event_maker(cls: type[RowEvent]) -> Callable[[Change, Row, float, bool], RowEvent]:
    """cls(change, row, when, complete) at half the cost: the frozen dataclass's __init__ goes through
    object.__setattr__ once per field; this sets the slots directly (same object, no __post_init__)."""
    new = object.__new__
    set_change, set_row, set_time, set_complete = (
        getattr(cls, name).__set__ for name in ("change", "row", "time", "complete")
    )

    def make(change: Change, row: Row, when: float, complete: bool) -> RowEvent:
        event = new(cls)
        set_change(event, change)
        set_row(event, row)
        set_time(event, when)
        set_complete(event, complete)
        return event

    return make


_MAKE_EVENT: Final = {kind: _event_maker(cls) for kind, cls in _EVENT_CLASS.items()}


def _merge(old: Event, new: Event) -> Event | None:
    """The net effect of two events of one object (None: nothing happened)."""
    if not isinstance(old, RowEvent) or not isinstance(new, RowEvent):
        return new
    if new.change is Change.DELETE:
        return None if old.change in (Change.ADD, Change.SNAPSHOT) else new
    if old.change is Change.DELETE:  # deleted and back: a change, or nothing if it came back the same
        if old.row == new.row:
            return None
        return _row_event(new.kind, Change.CHANGE, new.row, new.time, new.complete)
    if old.change in (Change.ADD, Change.SNAPSHOT):  # the consumer has not seen the old row yet
        return _row_event(new.kind, old.change, new.row, new.time, new.complete)
    return new


class _QueueBell:
    """Where blocked get() calls wait: tokens in a C queue (no Python-level lock dance per wake-up)."""

    def __init__(self) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def ring(self, count: int) -> None:
        for _ in range(count):
            self._tokens.put(None)

    def wait(self, timeout: float | None) -> int:
        """Until a token comes (taking it: 1) or timeout seconds pass (0; at most threading.TIMEOUT_MAX)."""
        try:
            self._tokens.get(True, None if timeout is None else max(0.0, min(timeout, threading.TIMEOUT_MAX)))
        except queue.Empty:
            return 0
        return 1

    def close(self) -> None:
        pass


class _Bell(Protocol):
    def ring(self, count: int) -> None: ...
    def wait(self, timeout: float | None) -> int: ...
    def close(self) -> None: ...


class _EpollSet(Protocol):  # select.epoll, which Windows lacks
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class _FdBell(_Bell, Protocol):
    fd: int

    def take(self) -> int: ...


if sys.platform == "linux":

    class _EventfdBell:
        """Linux: tokens in an eventfd that the dispatcher writes once it has dropped the GIL.

        A ring from an OS callback is deferred to the end of the dispatcher's delivery session (see
        ``_Doorbell``), so the woken consumer finds the GIL free instead of waking, then waiting for the GIL,
        then waking again.
        """

        def __init__(self, semaphore: bool = True) -> None:
            self._door = _nn._Doorbell(semaphore=semaphore)
            self.fd = self._door.fileno()
            self.ring = self._door.ring
            self.take = self._door.take
            self.close = self._door.close  # the eventfd goes once no delivery session still has to ring it

        def wait(self, timeout: float | None) -> int:
            # poll() without the GIL, then take(), in one C call (0 taken if another waiter took it: the
            # caller looks again); at most ~23 days at once (the caller loops)
            return self._door.wait(None if timeout is None else max(0, math.ceil(min(timeout, 2e6) * 1000)))

    def _new_bell() -> _Bell:
        return _EventfdBell()

    def _new_loop_bell() -> _FdBell | None:
        return _EventfdBell(semaphore=False)

else:

    def _new_loop_bell() -> _FdBell | None:
        return None

    def _new_bell() -> _Bell:
        return _QueueBell()


class Watcher:
    """Events of network changes; made by :func:`watch`. See docs/watch.md."""

    def __init__(
        self,
        kinds: tuple[Kind, ...],
        family: int,
        *,
        complete: bool,
        snapshot: bool,
        ignore_lifetime_changes: bool,
        settle: float | None,
        backpressure: Backpressure,
        maxsize: int,
        callback: Callable[[Event], object] | None,
    ) -> None:
        self.kinds: Final = kinds
        self.family: Final = socket.AddressFamily(family)
        self._complete = complete
        self._snapshot = snapshot
        self._ignore_lifetimes = ignore_lifetime_changes
        self._settle = settle
        self._backpressure = backpressure
        self._maxsize = maxsize
        self._callback = callback

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # the deliverer finishing (callback style)
        # Threads blocked in get() wait on the bell (made at the first wait); _waiting counts those not rung
        # yet, a ring gives one token each and starts a new _rings generation. A waiter that wakes in its own
        # generation was not rung (it timed out, or took a token left by one that did): it counts itself
        # out. _sleepers counts the threads inside the bell's wait: the bell is closed (its eventfd let go)
        # by close(), or by the last sleeper to leave after it.
        self._bell: _Bell | None = None
        self._waiting = 0
        self._rings = 0
        self._sleepers = 0
        # Unbounded queue, no callback: consumers pop without the lock (deque operations are atomic).
        self._plain = callback is None and backpressure == "unbounded"
        self._closed = False
        self._handles: list[NotificationHandle] = []
        # Linux, one row kind, queued: a consumer about to sleep in get() reads the registration's socket on
        # its own thread (NotificationHandle._read_here) instead of waiting to be woken by the dispatcher,
        # which reads it whenever no consumer does. One reader at a time: _here_reader, its thread's ident (0:
        # none; -1: poked, see _poke_reader).
        self._here: NotificationHandle | None = None
        self._here_reader = 0
        # The watcher's view of every object: (row, complete). Kinds whose table could not be read have
        # an incomplete view, and then a delete of an unknown object is still reported.
        self._state: dict[Key, tuple[Row, bool]] = {}
        self._state_known: set[Kind] = set()
        self._held: list[tuple[Kind, Change, Row, float, bool]] | None = []  # changes during the start
        # Consumers
        self._queue: deque[object] = deque()
        self._latest: dict[Key | object, Event] = {}
        self._dropped = 0
        self._overflowed = False
        # "bounded": what the consumer knows, from the events it took, to resynchronise it after an overflow
        self._consumer: dict[Key, tuple[Row, bool]] = {}
        self._outbox: deque[Event] = deque()
        self._deliverer: int | None = None
        self._pending: dict[Key | object, Event] = {}
        self._timer: threading.Timer | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # Linux: the first event loop to wait gets a reader on an eventfd of its own, rung like the bell
        # (after the dispatcher dropped the GIL); its woken waiters wait in _rung until the reader runs.
        # Other loops, and other systems, are woken by call_soon_threadsafe.
        self._loop_bell: _FdBell | None = None
        self._loop_bell_usable = True  # False once a loop had no add_reader: call_soon_threadsafe then
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._rung: list[asyncio.Future[None]] = []
        # Linux, with _here: that loop also watches an epoll set of the watcher's own, into which the
        # registration's socket is lent while a coroutine awaits an event (_lent), to be read in the loop
        # (_on_lent_readable, on the thread _loop_reading) instead of by the dispatcher, which then rings.
        self._loop_epoll: _EpollSet | None = None
        self._lent = False
        self._lending = False  # _lend() is asking for it
        self._loop_reading = 0
        self._loop_waits = 0  # aget() calls of the reader loop between starting and ending a wait
        # Linux, plain (no settle window): the registrations' callback is _PlainSink, _on_row and the plain
        # branch of _normalize in C; with _here, its take() is the consumer's loop of _get (no timeout) in C.
        self._sink: Callable[[Kind, Row | None, MibNotificationType], object] | None = None
        self._take: Callable[[], Event | None] | None = None
        if sys.platform == "linux" and self._plain and settle is None:
            self._sink = _nn._PlainSink(
                self, _EVENT_CLASS, (_CHANGE, _ADD, _DELETE), _only_lifetimes_differ, ignore_lifetime_changes
            )
        _WATCHERS.add(self)  # for _after_fork_in_child

    # ------------------------------------------------------------------ start

    def _start(self) -> None:
        try:
            self._register()
            if (
                sys.platform == "linux"
                and self._callback is None
                and len(self._handles) == 1
                and self.kinds[0] in (Kind.INTERFACE, Kind.ADDRESS, Kind.ROUTE)
            ):
                self._here = self._handles[0]
                if sys.platform == "linux" and isinstance(self._sink, _nn._PlainSink):
                    self._take = self._sink.take
            tables = self._read_tables()
        except BaseException:
            self.close()
            raise
        with self._lock:
            now = time.time()
            for kind, rows in tables.items():
                self._state_known.add(kind)
                for row in rows:
                    key = _key(kind, row)
                    self._state[key] = (row, True)
                    if self._snapshot:
                        self._deliver(_row_event(kind, Change.SNAPSHOT, row, now, True), key)
            if self._backpressure == "bounded" and not self._snapshot:
                # Without a snapshot the consumer starts from the world as it was (its view is implicit);
                # with one it knows what it takes, snapshot rows included (they may overflow too).
                self._consumer = dict(self._state)
            if self._snapshot and Kind.TEREDO in self.kinds:
                self._deliver(TeredoPortEvent(Change.SNAPSHOT, _nn.get_teredo_port(), now))
            if self._snapshot:
                self._deliver(SnapshotComplete(now))
            held, self._held = self._held or [], None
            for change in held:
                self._normalize(*change)
        self._drain_outbox()

    def _register(self) -> None:
        family = int(self.family)
        on_row = self._on_row if self._sink is None else self._sink
        for kind in self.kinds:
            if kind is Kind.INTERFACE:
                self._handles.append(_nn.notify_ip_interface_change(family, on_row, kind))
            elif kind is Kind.ADDRESS:
                self._handles.append(_nn.notify_unicast_ip_address_change(family, on_row, kind))
            elif kind is Kind.ROUTE:
                self._handles.append(_nn.notify_route_change2(family, on_row, kind))
            elif kind is Kind.TEREDO:
                self._handles.append(_nn.notify_teredo_port_change(self._on_teredo))
            else:
                result = _nn.notify_stable_unicast_ip_address_table(family, self._on_stable)
                if isinstance(result, list):
                    self._on_stable(None, result)
                else:
                    self._handles.append(result)

    def _read_tables(self) -> dict[Kind, list[Row]]:
        readers: dict[Kind, Callable[[int], list[Row]]] = {
            Kind.INTERFACE: _nn.get_ip_interface_table,  # type: ignore[dict-item]
            Kind.ADDRESS: _nn.get_unicast_ip_address_table,  # type: ignore[dict-item]
            Kind.ROUTE: _nn.get_ip_forward_table2,  # type: ignore[dict-item]
        }
        tables: dict[Kind, list[Row]] = {}
        for kind in self.kinds:
            if kind in readers:
                try:
                    tables[kind] = readers[kind](int(self.family))
                except NotSupportedError:
                    if self._snapshot:
                        raise
        return tables

    # ------------------------------------------------------------------ OS callbacks (any thread)

    def _on_row(self, kind: Kind, row: Row | None, ntype: MibNotificationType) -> None:
        # On Linux a plain watcher's registrations call _PlainSink instead (nn_sink.c: the same, in C)
        change = _CHANGES.get(ntype)
        if row is None or change is None:
            return
        when = time.time()
        complete = _ROWS_ARRIVE_COMPLETE
        if self._complete and not complete and change is not _DELETE:
            row, complete = self._completed(kind, row)
        with self._lock:
            if self._closed:
                return
            if self._held is not None:
                self._held.append((kind, change, row, when, complete))
                return
            self._normalize(kind, change, row, when, complete)
        if self._callback is not None:
            self._drain_outbox()

    @staticmethod
    def _completed(kind: Kind, row: Row) -> tuple[Row, bool]:
        try:
            if kind is Kind.INTERFACE:
                return _nn.get_ip_interface_entry(row), True  # type: ignore[arg-type]
            if kind is Kind.ADDRESS:
                return _nn.get_unicast_ip_address_entry(row), True  # type: ignore[arg-type]
            return _nn.get_ip_forward_entry2(row), True  # type: ignore[arg-type]
        except OSError:  # gone already, or no Get*Entry on this system: keep what the OS sent
            return row, False

    def _on_teredo(self, _context: object, port: int, ntype: MibNotificationType) -> None:
        if ntype in _CHANGES:
            self._external(TeredoPortEvent(_CHANGES[ntype], port, time.time()))

    def _on_stable(self, _context: object, table: list[MibUnicastIpAddressRow]) -> None:
        self._external(StableTableEvent(tuple(table), time.time()))

    def _external(self, event: Event) -> None:
        with self._lock:
            if not self._closed:
                self._deliver(event)
        self._drain_outbox()

    # ------------------------------------------------------------------ normalization (lock held)

    def _normalize(self, kind: Kind, change: Change, row: Row, when: float, complete: bool) -> None:
        # Keep nn_sink.c's nn_sink_normalize in step (tests/test_watch_sink.py compares them)
        key = (kind, row._identity)  # _key(), inlined: this runs for every change
        previous = self._state.get(key)
        if change is _DELETE:
            if previous is None:
                if kind in self._state_known:
                    return  # a delete of an object the consumer never had
                event = _row_event(kind, _DELETE, row, when, complete)
            else:
                del self._state[key]
                event = _MAKE_EVENT[kind](_DELETE, previous[0], when, previous[1])
        else:
            if previous is not None and previous[0] == row:
                return
            self._state[key] = (row, complete)
            if previous is not None and self._ignore_lifetimes and _only_lifetimes_differ(previous[0], row):
                return
            event = _MAKE_EVENT[kind](_ADD if previous is None else _CHANGE, row, when, complete)
        if self._plain and self._settle is None:  # _deliver() and _emit(), inlined for the common case
            self._queue.append(event)
            if self._waiting or self._async_waiters:
                self._wake()
            elif self._here_reader > 0 and self._here_reader != threading.get_ident():
                self._poke_reader()
            return
        self._deliver(event, key)

    def _deliver(self, event: Event, key: Key | None = None) -> None:
        slot: Key | object = key if key is not None else object()
        if self._settle is None:
            self._emit(event, slot)
            return
        merged = _merge(self._pending[slot], event) if slot in self._pending else event
        if merged is None:
            del self._pending[slot]
        else:
            self._pending[slot] = merged
        if self._timer is None:
            self._timer = threading.Timer(self._settle, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed:
                return
            pending, self._pending = self._pending, {}
            for slot, event in pending.items():
                self._emit(event, slot)
        self._drain_outbox()

    def _emit(self, event: Event, slot: Key | object) -> None:
        if self._callback is not None:
            self._outbox.append(event)
            return
        if self._backpressure == "latest":
            merged = _merge(self._latest[slot], event) if slot in self._latest else event
            if merged is None:
                del self._latest[slot]
            else:
                self._latest[slot] = merged
        elif self._backpressure == "bounded" and self._overflowed:
            self._dropped += 1  # its effect is in the state: the resynchronisation reports it
            return
        elif self._backpressure == "bounded" and len(self._queue) >= self._maxsize:
            self._overflowed = True
            self._dropped = 1
            self._queue.append(_OVERFLOW_MARK)
        else:
            self._queue.append(event)
        self._wake()

    def _resync_locked(self) -> list[Event]:
        """Overflow, the events from what the consumer knows to the current state, SnapshotComplete."""
        now = time.time()
        events: list[Event] = [Overflow(self._dropped, now)]
        for key, (row, complete) in self._consumer.items():
            if key not in self._state:
                events.append(_row_event(key[0], Change.DELETE, row, now, complete))  # type: ignore[arg-type]
        for key, (row, complete) in self._state.items():
            known = self._consumer.get(key)
            if known is None:
                events.append(_row_event(key[0], Change.ADD, row, now, complete))  # type: ignore[arg-type]
            elif known[0] != row:
                events.append(_row_event(key[0], Change.CHANGE, row, now, complete))  # type: ignore[arg-type]
        events.append(SnapshotComplete(now))
        # The state already holds what a settle window still had pending: do not report it twice.
        self._pending.clear()
        self._overflowed = False
        self._dropped = 0
        return events

    def _poke_reader(self) -> None:
        """Lock held: an event reached the queue on another thread (the dispatcher, or the settle timer)
        while a consumer is in _read_here, maybe asleep in its socket's read, or about to be (it saw the queue
        empty first): that read must return. Once per read (-1 until it ends)."""
        self._here_reader = -1
        if sys.platform == "linux" and self._here is not None:
            self._here._poke_here()

    def _wake(self) -> None:
        if self._here_reader > 0 and self._here_reader != threading.get_ident():
            self._poke_reader()
        if self._waiting and self._bell is not None:  # a waiter made the bell before it counted itself
            self._bell.ring(self._waiting)
            self._waiting = 0
            self._rings += 1
        if not self._async_waiters:
            return
        waiters, self._async_waiters = self._async_waiters, []
        ring = False
        in_loop = self._loop_reading == threading.get_ident()  # this thread runs the reader loop
        for loop, future in waiters:
            if loop is self._reader_loop:
                if in_loop:
                    _set_done(future)
                    continue
                self._rung.append(future)
                ring = True
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_set_done, future)
        if ring and self._loop_bell is not None:
            self._loop_bell.ring(1)

    def _release_bell(self) -> None:
        """Lock held: close the bell of the blocked get() calls once none waits on it."""
        if self._bell is not None and not self._sleepers:
            self._bell.close()
            self._bell = None

    def _on_loop_bell(self) -> None:
        """The reader of the loop bell, in its event loop: wake the waiters rung."""
        if self._loop_bell is not None:
            self._loop_bell.take()
        with self._lock:
            rung, self._rung = self._rung, []
        for future in rung:
            _set_done(future)

    def _watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lock held: give loop the loop bell's reader if no open loop has it."""
        if self._reader_loop is not None and self._reader_loop.is_closed() and not self._lent:
            # Closed, its readers gone with it: the next loop that waits gets them, afresh.
            if self._loop_bell is not None:
                self._loop_bell.close()
            if self._loop_epoll is not None:
                self._loop_epoll.close()
            self._reader_loop, self._loop_bell, self._loop_epoll, self._rung = None, None, None, []
        if self._reader_loop is not None or not self._loop_bell_usable or self._closed:
            return
        bell = _new_loop_bell()
        if bell is None:  # not on this system: call_soon_threadsafe does
            self._loop_bell_usable = False
            return
        try:
            loop.add_reader(bell.fd, self._on_loop_bell)
        except NotImplementedError:  # a loop without readers: call_soon_threadsafe does
            bell.close()
            self._loop_bell_usable = False
            return
        self._loop_bell = bell
        self._reader_loop = loop
        if sys.platform == "linux" and self._here is not None:
            epoll = select.epoll()
            try:
                loop.add_reader(epoll.fileno(), self._on_lent_readable)
            except BaseException:
                epoll.close()
                raise
            self._loop_epoll = epoll

    def _on_lent_readable(self) -> None:
        """The reader of the loop's epoll set, in its event loop: the lent socket is readable, read it. With
        no coroutine waiting any more (the consumer awaits something else), the dispatcher gets it back."""
        here = self._here
        with self._lock:
            if not self._lent or here is None:
                return
            self._loop_reading = threading.get_ident()
            give_back = not self._loop_waits
        still = False
        try:
            if sys.platform == "linux":
                still = here._lent_read(give_back)  # the callbacks run here; False: given back
        finally:
            with self._lock:
                self._loop_reading = 0
                self._lent = still and self._lent  # close() may have taken it back meanwhile

    def _give_back(self) -> None:
        """Lock not held: the lent socket goes back to the dispatcher (waiting for a read of it in progress on
        the loop's thread); _lent is cleared already."""
        if self._here is not None and sys.platform == "linux":
            self._here._lend_end()

    def _take_back_locked(self) -> None:
        """Lock held (released meanwhile): the lent socket goes back to the dispatcher."""
        self._lent = False
        self._lock.release()
        try:
            self._give_back()
        finally:
            self._lock.acquire()

    def _lend_locked(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Lock held: should the socket be lent to loop's epoll set now (then call _lend)?"""
        if (
            self._loop_epoll is None
            or loop is not self._reader_loop
            or self._lent
            or self._lending
            or self._here_reader
            or self._closed
            or not self._loop_waits
        ):
            return False
        self._lending = True
        return True

    def _lend(self) -> None:
        """Lend the socket to the reader loop (after _lend_locked); a refusal leaves it to the dispatcher."""
        epoll, here = self._loop_epoll, self._here
        lent = False
        try:
            if sys.platform == "linux" and epoll is not None and here is not None:
                lent = here._lend(epoll.fileno())
        except (OSError, ValueError):  # epoll closed meanwhile, or no memory: the dispatcher reads it
            pass
        finally:
            with self._lock:
                self._lending = False
                self._lent = lent and not self._closed
            if lent and self._closed:
                self._give_back()  # closed meanwhile: close() did not know it was lent

    def _drain_outbox(self) -> None:
        """Callback style: call the user's callback for queued events, one caller at a time."""
        if self._callback is None:
            return
        me = threading.get_ident()
        with self._lock:
            if self._deliverer is not None:
                return  # another thread delivers; it will take our events too
            self._deliverer = me
        try:
            while True:
                with self._lock:
                    if self._closed or not self._outbox:
                        return
                    event = self._outbox.popleft()
                try:
                    self._callback(event)
                except Exception as exc:  # reported like any callback error; delivery goes on
                    _nn._report_exception(exc, self._callback)
        finally:
            with self._lock:
                self._deliverer = None
                self._cond.notify_all()

    # ------------------------------------------------------------------ consumers

    def _take_locked(self) -> Event | None:
        while True:
            if self._latest:
                slot = next(iter(self._latest))
                return self._latest.pop(slot)
            if not self._queue:
                return None
            item = self._queue.popleft()
            if item is _OVERFLOW_MARK:
                self._queue.extendleft(reversed(self._resync_locked()))
                continue
            if self._backpressure == "bounded" and isinstance(item, RowEvent):
                key = _key(item.kind, item.row)
                if item.change is Change.DELETE:
                    self._consumer.pop(key, None)
                else:
                    self._consumer[key] = (item.row, item.complete)
            return item  # type: ignore[return-value]

    def _check_queued(self) -> None:
        if self._callback is not None:
            raise TypeError("this watcher delivers to its callback; it cannot be iterated")

    def get(self, timeout: float | None = None) -> Event:
        """The next event; TimeoutError if none comes within timeout seconds, WatcherClosed once closed."""
        if timeout is not None:
            timeout = _timeout_seconds(timeout)
        if self._plain and self._queue:  # tested first: an empty deque's popleft raises, which costs more
            try:
                return self._queue.popleft()  # type: ignore[return-value]
            except IndexError:  # another consumer took it
                pass
        if timeout is None and self._take is not None:
            event = self._take()  # _get's loop in C; None: this path's decision
            if event is not None:
                return event
        if self._callback is not None:
            self._check_queued()
        try:
            return self._get(timeout)
        except RuntimeError as error:
            # Ctrl-C inside Condition.wait, after it released the lock and before it took it back, makes
            # the with block's exit fail to release: the user pressed Ctrl-C, so that is what they get.
            if type(error) is RuntimeError and isinstance(error.__context__, KeyboardInterrupt):
                raise error.__context__ from None
            raise

    def _get(self, timeout: float | None) -> Event:
        deadline = None if timeout is None else time.monotonic() + timeout
        lock = self._lock
        tried_here = False  # the socket could not be read on this thread: wait on the bell once
        with lock:  # held but while the thread sleeps: one acquisition per wake-up, not two
            while True:
                if self._plain and self._queue:  # _take_locked(), inlined for the common case
                    return self._queue.popleft()  # type: ignore[return-value]
                event = self._take_locked()
                if event is not None:
                    return event
                if self._closed:
                    raise WatcherClosed("the watcher is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no network change within {timeout} s")
                if self._lent:
                    # An event loop reads the socket: this thread may be that loop's (blocking it), or the
                    # loop may have stopped. The socket goes back to the dispatcher, the loop lends it again.
                    self._take_back_locked()
                    continue
                if (
                    sys.platform == "linux"
                    and remaining is None
                    and self._here is not None
                    and not self._here_reader
                    and not tried_here
                ):
                    here, self._here_reader = self._here, threading.get_ident()
                    lock.release()
                    try:
                        read = here._read_here()  # the callbacks run here, on this thread
                    finally:
                        lock.acquire()
                        self._here_reader = 0
                    tried_here = not read
                    continue  # what was read, or a close meanwhile, is seen at the top
                if self._bell is None:
                    self._bell = _new_bell()
                bell = self._bell
                self._waiting += 1
                self._sleepers += 1
                generation = self._rings
                took = 0
                lock.release()
                try:
                    took = bell.wait(remaining)  # at most TIMEOUT_MAX at once: the loop waits again
                finally:
                    lock.acquire()
                    self._sleepers -= 1
                    # Not rung: count this waiter out, unless it took a token, which then was rung for
                    # another sleeper, rung before this one counted itself: that one sleeps on without a
                    # token, and this one's count is now its own (without it, nothing would ever wake it).
                    if self._rings == generation and not took:
                        self._waiting -= 1
                    if self.closed:  # closed while this thread slept: the last sleeper lets the bell go
                        self._release_bell()
                tried_here = False

    def __iter__(self) -> Iterator[Event]:
        self._check_queued()
        return self._events()

    def _events(self) -> Iterator[Event]:
        take = self._take
        while True:
            if take is not None:
                event = take()  # get(), without its Python frames; None: get() decides
                if event is not None:
                    yield event
                    continue
            try:
                yield self.get()
            except WatcherClosed:
                return

    async def aget(self, timeout: float | None = None) -> Event:
        """The next event, awaited; TimeoutError and WatcherClosed as for get()."""
        if timeout is not None:
            timeout = _timeout_seconds(timeout)
        if self._plain and self._queue:
            try:
                return self._queue.popleft()  # type: ignore[return-value]
            except IndexError:  # another consumer took it
                pass
        self._check_queued()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._lock:
                event = self._take_locked()
                if event is not None:
                    return event
                if self._closed:
                    raise WatcherClosed("the watcher is closed")
                if self._lent and loop is not self._reader_loop:  # lent to another loop, maybe stopped
                    self._take_back_locked()
                    continue
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no network change within {timeout} s")
                future: asyncio.Future[None] = loop.create_future()
                self._watch_loop(loop)
                self._async_waiters.append((loop, future))
                counted = loop is self._reader_loop
                self._loop_waits += counted
                lend = self._lend_locked(loop)
            try:
                if lend:
                    self._lend()
                if remaining is None:
                    await future
                else:
                    await asyncio.wait_for(future, remaining)
            except TimeoutError:
                raise TimeoutError(f"no network change within {timeout} s") from None
            finally:
                with self._lock:
                    if (loop, future) in self._async_waiters:
                        self._async_waiters.remove((loop, future))
                    if future in self._rung:
                        self._rung.remove(future)
                    # A wait that timed out or was cancelled, the last of this loop: the dispatcher reads
                    # again. After a wake-up, the consumer most likely waits again at once: the loop's next
                    # read gives the socket back if it does not (_on_lent_readable).
                    self._loop_waits -= counted
                    interrupted = not future.done() or future.cancelled()
                    end = self._lent and counted and not self._loop_waits and interrupted
                    if end:
                        self._lent = False
                if end:
                    self._give_back()

    def __aiter__(self) -> Self:
        self._check_queued()
        return self

    async def __anext__(self) -> Event:
        if self._plain and self._queue:  # aget()'s first step, without a second coroutine per event
            try:
                return self._queue.popleft()  # type: ignore[return-value]
            except IndexError:  # another consumer took it
                pass
        try:
            return await self.aget()
        except WatcherClosed:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop watching; idempotent, and safe from any thread and from inside the callback."""
        with self._lock:
            handles, self._handles = self._handles, []
            timer, self._timer = self._timer, None
            self._closed = True
            self._pending.clear()
            self._outbox.clear()
            # Wake every async waiter by call_soon_threadsafe: the loop bell's reader goes now.
            reader_loop, self._reader_loop = self._reader_loop, None
            loop_bell, self._loop_bell = self._loop_bell, None
            loop_epoll, self._loop_epoll = self._loop_epoll, None
            lent, self._lent = self._lent, False
            rung, self._rung = self._rung, []
            self._wake()
            self._release_bell()  # now, or when the last thread blocked in get() leaves it
        if lent:
            self._give_back()  # before the epoll set goes (the cancel below would do it too)
        if reader_loop is not None and loop_bell is not None:
            try:
                for future in rung:
                    reader_loop.call_soon_threadsafe(_set_done, future)
                reader_loop.call_soon_threadsafe(_drop_reader, reader_loop, loop_bell, loop_epoll)
            except RuntimeError:  # the loop is closed: nobody waits, and its readers went with it
                loop_bell.close()
                if loop_epoll is not None:
                    loop_epoll.close()
        if timer is not None:
            timer.cancel()
        for handle in handles:
            handle.cancel()  # waits for a running OS callback (never for the current one)
        with self._lock:
            me = threading.get_ident()
            while self._deliverer is not None and self._deliverer != me:
                self._cond.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._latest) + len(self._outbox)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kinds = ",".join(self.kinds)
        state = "closed" if self._closed else "open"
        return f"<Watcher {kinds} {self.family.name} {state} queued={len(self)}>"


def _timeout_seconds(timeout: float | None) -> float | None:
    """get()'s and aget()'s timeout: None, or seconds (0 or less polls; inf, or more, waits without end)."""
    if timeout is None:
        return None
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:  # an int beyond any float
        seconds = float("inf") if timeout > 0 else float("-inf")
    if seconds != seconds:
        raise ValueError("timeout must be a number of seconds, not NaN")
    return seconds


# fork(): the child has none of the threads that deliver to a watcher (the dispatcher, a settle timer), and
# the registrations it inherits never call back (docs/reliability.md, "fork"). A thread of the parent may have
# held a watcher's lock, or been delivering to its callback, at the fork: each inherited watcher gets fresh
# locks and is closed (what it had queued can still be taken; close() releases its registrations).
_WATCHERS: weakref.WeakSet[Watcher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for watcher in list(_WATCHERS):
        watcher._lock = threading.RLock()
        watcher._cond = threading.Condition(watcher._lock)
        watcher._waiting = 0
        watcher._deliverer = None
        watcher._timer = None
        watcher._async_waiters = []
        watcher._bell = None  # the inherited eventfds are the parent's too: the child makes its own
        watcher._rings = 0
        watcher._sleepers = 0
        watcher._loop_bell = None
        watcher._reader_loop = None
        watcher._loop_epoll = None  # the parent's registrations in it stay the parent's
        watcher._lent = False
        watcher._lending = False
        watcher._loop_reading = 0
        watcher._here_reader = 0
        watcher._loop_waits = 0
        watcher._rung = []
        watcher._pending.clear()
        watcher._outbox.clear()
        watcher._closed = True


if sys.platform != "win32":
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _drop_reader(loop: asyncio.AbstractEventLoop, bell: _FdBell, epoll: _EpollSet | None) -> None:
    """In the loop: remove the loop bell's reader, then let its eventfd go; the same for the epoll set."""
    loop.remove_reader(bell.fd)
    bell.close()
    if epoll is not None:
        loop.remove_reader(epoll.fileno())
        epoll.close()


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def watch(
    *kinds: Kind | str,
    family: int = socket.AF_UNSPEC,
    complete: bool = True,
    snapshot: bool = False,
    ignore_lifetime_changes: bool = False,
    settle: float | None = None,
    backpressure: Backpressure = "unbounded",
    maxsize: int = 10_000,
    callback: Callable[[Event], object] | None = None,
) -> Watcher:
    """Watch network changes; see docs/watch.md."""
    chosen: list[Kind] = []
    for kind in kinds or _DEFAULT_KINDS:
        if not isinstance(kind, str):
            raise TypeError(f"a kind is a Kind or str, not {type(kind).__name__}")
        try:
            value = Kind(kind)
        except ValueError:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(Kind)}") from None
        if value not in chosen:
            chosen.append(value)
    if not isinstance(family, int) or isinstance(family, bool):
        raise TypeError(f"family must be an int (socket.AF_*), not {type(family).__name__}")
    if family not in _FAMILIES:
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family}")
    if settle is not None:
        if not isinstance(settle, int | float) or isinstance(settle, bool):
            raise TypeError(f"settle must be a number of seconds, not {type(settle).__name__}")
        if not 0 <= settle <= threading.TIMEOUT_MAX:  # a timer cannot wait longer (NaN fails too)
            raise ValueError(f"settle must be 0 to threading.TIMEOUT_MAX seconds, not {settle}")
    if not isinstance(backpressure, str):
        raise TypeError(f"backpressure must be a str, not {type(backpressure).__name__}")
    if backpressure not in ("unbounded", "bounded", "latest"):
        raise ValueError(f"backpressure must be 'unbounded', 'bounded' or 'latest', not {backpressure!r}")
    if not isinstance(maxsize, int) or isinstance(maxsize, bool):
        raise TypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    if maxsize < 1:
        raise ValueError(f"maxsize must be at least 1, not {maxsize}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    watcher = Watcher(
        tuple(chosen),
        family,
        complete=bool(complete),
        snapshot=bool(snapshot),
        ignore_lifetime_changes=bool(ignore_lifetime_changes),
        settle=settle,
        backpressure=backpressure,
        maxsize=maxsize,
        callback=callback,
    )
    watcher._start()
    return watcher
