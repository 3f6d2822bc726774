"""The in-memory store (``memory://``): the library's, with the time index."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory


class POPOTimeIndexedRecorder(POPOApplicationRecorder):
    """In-memory application recorder with a timestamp index."""

    def __init__(self) -> None:
        super().__init__()
        self._timestamps: dict[UUID, list[tuple[datetime, int]]] = defaultdict(list)

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        for originator_id, at, version in kwargs.get("event_timestamps", ()):
            if at:
                bisect.insort(self._timestamps[originator_id], (at, version))
        return notification_ids

    def version_at(self, originator_id: UUID, at: datetime) -> int | None:
        """The newest indexed version recorded at or before ``at`` (None when there is none)."""
        with self._database_lock:
            entries = self._timestamps.get(originator_id, [])
            upto = bisect.bisect_right(entries, (at, float("inf")))
            return max((version for _, version in entries[:upto]), default=None)


class TimeIndexedPOPOFactory(POPOFactory):
    """The library's in-memory factory, with the time-indexed recorder."""

    def application_recorder(self) -> ApplicationRecorder:
        return POPOTimeIndexedRecorder()
