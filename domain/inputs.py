"""The checks a command runs on its input before it looks at the job's state.

Each returns the checked value or raises ``InvalidInputError`` naming the field as the API spells
it, so a refusal reads the same from Python and over HTTP.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from domain.errors import InvalidInputError

MAX_JSON_DEPTH = 32
MAX_ITEMS = 2**53 - 1


def text(field: str, value: str, max_chars: int) -> str:
    """A non-empty string of at most ``max_chars`` characters, without NUL."""
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be a string")
    if not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if len(value) > max_chars:
        raise InvalidInputError(field, f"must be at most {max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise InvalidInputError(field, "must not contain NUL characters")
    return value


def integer(field: str, value: int, minimum: int, maximum: int = MAX_ITEMS) -> int:
    """An integer (not a bool) between ``minimum`` and ``maximum``, inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, "must be an integer")
    if not minimum <= value <= maximum:
        raise InvalidInputError(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def seconds(field: str, value: float, minimum: float, maximum: float) -> float:
    """A finite number of seconds between ``minimum`` and ``maximum``, inclusive."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(field, "must be a number of seconds")
    if not minimum <= value <= maximum:
        raise InvalidInputError(field, f"must be between {minimum:g} and {maximum:g}, got {value}")
    return float(value)


def instant(field: str, value: datetime) -> datetime:
    """A datetime with a time zone (a naive one could mean any instant)."""
    if not isinstance(value, datetime):
        raise InvalidInputError(field, "must be a date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, "must have a time zone, such as Z or +02:00")
    return value


def json_text(field: str, value: Any, max_bytes: int) -> str:
    """``value`` as compact JSON text, refusing what JSON cannot hold or what is too big."""
    _check_depth(field, value, MAX_JSON_DEPTH)
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(field, f"must be JSON: {error}") from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise InvalidInputError(field, f"must be at most {max_bytes} bytes as JSON, got {size}")
    return encoded


def _check_depth(field: str, value: Any, depth_left: int) -> None:
    if isinstance(value, dict | list | tuple):
        if depth_left == 0:
            raise InvalidInputError(field, f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            _check_depth(field, child, depth_left - 1)
