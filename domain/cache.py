"""AggregateCache: this process's copies of recently used aggregates, caught up on demand.

A command can run against :meth:`AggregateCache.cached` without reading the store: when another
process changed the aggregate meanwhile, its save conflicts on the version and the command runs
again against :meth:`AggregateCache.fresh`. ``fresh`` is the cached copy plus whatever the store
holds beyond it: one indexed select of the newer events, nothing decoded when there are none, so
a change made through another process (say, a disabled user) is seen at once.

Every copy handed out is a clone, so a command that fails leaves the cache as it was.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
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

    def cached(self, aggregate_id: UUID) -> A | None:
        """A copy as this process last saw it (no store read; may be behind); None if unseen."""
        with self._lock:
            copy = self._copies.get(aggregate_id)
            if copy is None:
                return None
            self._copies.move_to_end(aggregate_id)
        return self._clone(copy)

    def fresh(self, aggregate_id: UUID) -> A:
        """A copy as the store has it now: the cached copy plus any newer events (or a load)."""
        copy = self.cached(aggregate_id)
        if copy is None:
            copy = self._load(aggregate_id)
            self.remember(copy)
            return copy
        caught_up = False
        event: Any
        for event in self._events.get(aggregate_id, gt=copy.version):
            event.mutate(copy)
            caught_up = True
        if caught_up:
            self.remember(copy)
        return copy

    def remember(self, aggregate: A) -> None:
        """Keeps a copy of ``aggregate`` (saved or loaded), unless a newer one is already kept."""
        copy = self._clone(aggregate)
        with self._lock:
            kept = self._copies.get(copy.id)
            if kept is not None and kept.version > copy.version:
                return
            self._copies[copy.id] = copy
            self._copies.move_to_end(copy.id)
            if len(self._copies) > self._maxsize:
                self._copies.popitem(last=False)
