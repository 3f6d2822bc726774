"""List queries on the ``job_summary`` view: filters, sort, pages, and the signed keyset cursor.

A :class:`JobQuery` checks itself when built and raises ``InvalidInputError`` (HTTP 422) for bad
input: ``limit`` outside 1-100, a negative ``offset``, an unknown status or sort, a naive time, a
cursor that is not of the shape ``CURSOR_PATTERN`` says. A cursor is ``base64url(payload) "."
base64url(hmac)``: the payload holds the last row's ``(created_at, id)`` key and a fingerprint of
the filters and sort; the HMAC (SHA-256, the view's secret key) makes any change to it detectable.
One of that shape that this view did not issue, or issued for another query, names no page
(``PageNotFoundError``, HTTP 404). Pages by cursor continue strictly after that key in the sort
order, so rows inserted meanwhile cause no duplicates and no skips; an offset with a cursor skips
that many rows after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.errors import InvalidInputError, PageNotFoundError
from domain.job import MAX_ACTOR_CHARS, MAX_TYPE_CHARS, JobStatus
from projections.summary import JobSummary

MIN_LIMIT = 1
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
MAX_CURSOR_CHARS = 512
#: The shape of a cursor: two base64url texts (without padding) joined by a dot.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_CURSOR = re.compile(CURSOR_PATTERN)
MAX_OFFSET = 10_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAC_BYTES = 16


class SortOrder(StrEnum):
    """How a list is ordered (ties broken by job id, in the same direction)."""

    #: Newest first (the default).
    NEWEST_FIRST = "-createdAt"
    #: Oldest first.
    OLDEST_FIRST = "createdAt"

    @property
    def descending(self) -> bool:
        return self is SortOrder.NEWEST_FIRST


@dataclass(frozen=True, slots=True)
class Keyset:
    """The position of a row in the sort order: its creation time, then its id."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True)
class JobQuery:
    """A list query; raises InvalidInputError (naming the parameter) when built from bad input."""

    #: Any of these statuses (all when empty).
    statuses: tuple[JobStatus, ...] = ()
    job_type: str | None = None
    created_by: str | None = None
    #: Created at or after this time (inclusive).
    created_since: datetime | None = None
    #: Created strictly before this time.
    created_before: datetime | None = None
    sort: SortOrder = SortOrder.NEWEST_FIRST
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    cursor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "statuses", _statuses(self.statuses))
        object.__setattr__(self, "sort", _sort(self.sort))
        _text("type", self.job_type, MAX_TYPE_CHARS)
        _text("createdBy", self.created_by, MAX_ACTOR_CHARS)
        _time("createdSince", self.created_since)
        _time("createdBefore", self.created_before)
        _integer("limit", self.limit, MIN_LIMIT, MAX_LIMIT)
        _integer("offset", self.offset, 0, MAX_OFFSET)
        if self.cursor is not None and (
            not isinstance(self.cursor, str)
            or len(self.cursor) > MAX_CURSOR_CHARS
            or not _CURSOR.fullmatch(self.cursor)
        ):
            raise InvalidInputError("cursor", "is malformed: give a nextCursor as it was sent")

    def fingerprint(self) -> str:
        """Identifies the filters and the sort: a cursor only continues the query it came from."""
        filters = [
            sorted(s.value for s in self.statuses),
            self.job_type,
            self.created_by,
            None if self.created_since is None else _micros(self.created_since),
            None if self.created_before is None else _micros(self.created_before),
            self.sort.value,
        ]
        text = json.dumps(filters, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def matches(self, row: JobSummary) -> bool:
        """Whether a row passes the filters (the in-memory view and tests use this)."""
        return (
            (not self.statuses or row.status in self.statuses)
            and (self.job_type is None or row.job_type == self.job_type)
            and (self.created_by is None or row.created_by == self.created_by)
            and (self.created_since is None or row.created_at >= self.created_since)
            and (self.created_before is None or row.created_at < self.created_before)
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a list: its rows, the limit and offset used, and the cursor of the next page."""

    items: list[JobSummary]
    limit: int
    offset: int
    #: Continues after the last item; None when this page is the last one.
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Signs and checks cursors with a secret key (kept by the view, shared by its processes)."""

    key: bytes = field(repr=False)

    def encode(self, query: JobQuery, after: Keyset) -> str:
        payload = json.dumps(
            {"f": query.fingerprint(), "t": _micros(after.created_at), "i": after.id.hex},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, query: JobQuery) -> Keyset | None:
        """The key the query's cursor continues after (None without a cursor)."""
        if query.cursor is None:
            return None
        try:
            payload_text, mac_text = query.cursor.split(".")
            payload = _unb64(payload_text)
            valid = hmac.compare_digest(self._mac(payload), _unb64(mac_text))
        except (ValueError, binascii.Error):
            valid = False
        if not valid:
            raise PageNotFoundError(
                "The cursor names no page: it was changed, or not issued by this server."
            )
        fields_ = json.loads(payload)
        if fields_["f"] != query.fingerprint():
            raise PageNotFoundError(
                "The cursor names no page of this query: it continues another one; repeat that "
                "query's filters and sort with it."
            )
        return Keyset(EPOCH + timedelta(microseconds=fields_["t"]), UUID(hex=fields_["i"]))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def next_cursor(codec: CursorCodec, query: JobQuery, rows: list[JobSummary]) -> JobPage:
    """The page for ``rows`` fetched with ``limit + 1``: the extra row only says there is more."""
    items = rows[: query.limit]
    cursor = None
    if len(rows) > query.limit:
        last = items[-1]
        cursor = codec.encode(query, Keyset(last.created_at, last.id))
    return JobPage(items, query.limit, query.offset, cursor)


def sort_key(row: JobSummary) -> tuple[datetime, UUID]:
    return row.created_at, row.id


def _statuses(value: Any) -> tuple[JobStatus, ...]:
    if isinstance(value, str):
        value = (value,)
    statuses: set[JobStatus] = set()
    for status in value:
        try:
            statuses.add(JobStatus(status))
        except ValueError:
            allowed = ", ".join(s.value for s in JobStatus)
            raise InvalidInputError("status", f"must be one of {allowed}, got {status!r}") from None
    return tuple(s for s in JobStatus if s in statuses)


def _sort(value: Any) -> SortOrder:
    try:
        return SortOrder(value)
    except ValueError:
        allowed = ", ".join(s.value for s in SortOrder)
        raise InvalidInputError("sort", f"must be one of {allowed}, got {value!r}") from None


def _text(name: str, value: Any, max_chars: int) -> None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= max_chars):
        raise InvalidInputError(name, f"must be a string of 1 to {max_chars} characters")


def _time(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise InvalidInputError(name, "must be a time with a timezone")


def _integer(name: str, value: Any, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInputError(name, f"must be an integer from {minimum} to {maximum}")


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data
