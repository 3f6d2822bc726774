"""AggregateCache: this process's copies of recently used aggregates, caught up on demand.

A command can run against :meth:`AggregateCache.cached` without reading the store: when another
process changed the aggregate meanwhile, its save conflicts on the version and the command runs
again against :meth:`AggregateCache.fresh`. ``fresh`` is the cached copy plus whatever the store
holds beyond it: one indexed select of the newer events, nothing decoded when there are none, so
a change made through another process (say, a disabled user) is seen at once.

A read can go further and skip the store with :meth:`AggregateCache.current`: a copy *confirmed*
to be at least as new as the view. While a projection runner in this process is the active one,
it reports every event to :meth:`AggregateCache.shown` before the view shows it; a copy is
confirmed when it was read or saved while the runner was reporting and no newer event of its
aggregate was reported meanwhile, and loses its confirmation as soon as one is. A command answers
only once the view shows it (read-your-writes), so a confirmed copy holds every change any client
has been told about; without a reporting runner nothing is confirmed and reads go to the store.

Every copy handed out is a clone, so a command that fails leaves the cache as it was.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore

A = TypeVar("A", bound=Aggregate)


class AggregateCache(Generic[A]):
    """The newest copies this process saw of up to ``maxsize`` aggregates, least recent evicted."""

    def __init__(
        self,
        events: EventStore[UUID],
        load: Callable[[UUID], A],
        clone: Callable[[A], A],
        maxsize: int,
    ) -> None:
        self._events = events
        self._load = load
        self._clone = clone
        self._maxsize = maxsize
        self._copies: OrderedDict[UUID, A] = OrderedDict()
        self._lock = threading.Lock()
        #: The kept copies confirmed as new as the view: ``UUID.int`` -> the copy's version.
        self._confirmed: dict[int, int] = {}
        #: Reads and saves in flight: ``UUID.int`` -> [how many, newest version shown meanwhile].
        self._watched: dict[int, list[int]] = {}
        #: Which run of a reporting runner confirmations belong to (None: no runner reports).
        self._epoch: int | None = None
        self._epochs = 0

    def cached(self, aggregate_id: UUID) -> A | None:
        """A copy as this process last saw it (no store read; may be behind); None if unseen."""
        with self._lock:
            copy = self._copies.get(aggregate_id)
            if copy is None:
                return None
            self._copies.move_to_end(aggregate_id)
        return self._clone(copy)

    def current(self, aggregate_id: UUID) -> A | None:
        """A copy at least as new as the view (no store read); None when none is confirmed."""
        with self._lock:
            if aggregate_id.int not in self._confirmed:
                return None
            copy = self._copies[aggregate_id]
            self._copies.move_to_end(aggregate_id)
        return self._clone(copy)

    def fresh(self, aggregate_id: UUID) -> A:
        """A copy as the store has it now: the cached copy plus any newer events (or a load)."""
        with self._watching(aggregate_id) as keep:
            copy = self.cached(aggregate_id)
            if copy is None:
                copy = self._load(aggregate_id)
                keep(copy, True)
                return copy
            caught_up = False
            event: Any
            for event in self._events.get(aggregate_id, gt=copy.version):
                event.mutate(copy)
                caught_up = True
            keep(copy, caught_up)
        return copy

    def remember(self, aggregate: A) -> None:
        """Keeps a copy of ``aggregate`` (saved or loaded), unless a newer one is already kept."""
        self._keep(self._clone(aggregate), confirm=False)

    @contextmanager
    def saving(self, aggregate_id: UUID) -> Iterator[Callable[[A], None]]:
        """Watches a save of the aggregate; call what it yields with the saved aggregate to keep
        a copy (confirmed, when no newer event was shown meanwhile)."""
        with self._watching(aggregate_id) as keep:
            yield lambda aggregate: keep(aggregate, True)

    # What the view shows (the active projection runner of this process reports it).

    def reported(self) -> None:
        """Starts confirming copies: from now on every event is reported before the view shows
        it. Forgets earlier confirmations (events shown meanwhile were not reported)."""
        with self._lock:
            self._epochs += 1
            self._epoch = self._epochs
            self._confirmed.clear()

    def unreported(self) -> None:
        """Stops confirming copies, and forgets every confirmation: events are no longer
        reported (call it before another process's runner can take over)."""
        with self._lock:
            self._epoch = None
            self._confirmed.clear()

    def shown(self, versions: Iterable[tuple[int, int]]) -> None:
        """The view is about to show these events, ``(UUID.int, version)``: a kept copy older
        than one of them is no longer confirmed."""
        with self._lock:
            confirmed, watched = self._confirmed, self._watched
            if not confirmed and not watched:
                return
            for key, version in versions:
                kept = confirmed.get(key)
                if kept is not None and kept < version:
                    del confirmed[key]
                watch = watched.get(key)
                if watch is not None and watch[1] < version:
                    watch[1] = version

    @contextmanager
    def _watching(self, aggregate_id: UUID) -> Iterator[Callable[[A, bool], None]]:
        """Notes the events shown while a read or a save is in flight, so that the copy it
        yields is confirmed only when none of them is newer. Yields ``keep(copy, changed)``:
        ``changed`` False means the kept copy is already at the copy's version."""
        key = aggregate_id.int
        with self._lock:
            epoch = self._epoch
            watch = self._watched.setdefault(key, [0, 0])
            watch[0] += 1
        kept = False

        def keep(copy: A, changed: bool) -> None:
            nonlocal kept
            kept = True
            clone = self._clone(copy) if changed else None
            with self._lock:
                confirm = self._end_watch(key, watch, epoch) <= copy.version
                if clone is not None:
                    self._keep_locked(clone, confirm)
                elif confirm:
                    self._confirm_locked(aggregate_id, copy.version)

        try:
            yield keep
        finally:
            if not kept:
                with self._lock:
                    self._end_watch(key, watch, epoch)

    def _end_watch(self, key: int, watch: list[int], epoch: int | None) -> float:
        """Ends one watch (under the lock); the newest version shown meanwhile (infinite when
        no runner reported all along)."""
        watch[0] -= 1
        if watch[0] == 0:
            del self._watched[key]
        if epoch is None or epoch != self._epoch:
            return float("inf")
        return watch[1]

    def _keep(self, copy: A, *, confirm: bool) -> None:
        with self._lock:
            self._keep_locked(copy, confirm)

    def _keep_locked(self, copy: A, confirm: bool) -> None:
        kept = self._copies.get(copy.id)
        if kept is not None and kept.version > copy.version:
            return
        self._copies[copy.id] = copy
        self._copies.move_to_end(copy.id)
        key = copy.id.int
        if confirm:
            self._confirmed[key] = copy.version
        elif kept is None or kept.version < copy.version:
            self._confirmed.pop(key, None)
        if len(self._copies) > self._maxsize:
            evicted, _ = self._copies.popitem(last=False)
            self._confirmed.pop(evicted.int, None)

    def _confirm_locked(self, aggregate_id: UUID, version: int) -> None:
        kept = self._copies.get(aggregate_id)
        if kept is not None and kept.version == version:
            self._confirmed[aggregate_id.int] = version
