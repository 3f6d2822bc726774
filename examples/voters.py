"""Handlers for the README's worker example (``--handlers examples.voters:handlers``).

- ``import_voters`` reads a CSV (``{"file": "examples/voters.csv"}``, relative to the
  worker's folder), reports progress after every row and logs each bad row as an error without
  failing the job; a file that is not there fails the job for good (``Discard``).
- ``geocode`` fails its first attempt as a remote geocoder sometimes does, so the job is retried
  after a backoff, and answers on the second attempt: the job's history shows both attempts.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from pathlib import Path
from typing import Any

from worker import Discard, JobContext

ZIP = re.compile(r"\d{5}")
#: A pause per row, so that progress can be watched moving (``secondsPerRow`` in the job data).
SECONDS_PER_ROW = 0.2


def import_voters(context: JobContext) -> dict[str, int]:
    data = context.data or {}
    path = Path(data.get("file", "examples/voters.csv"))
    if not path.is_file():
        raise Discard(f"no such file: {path}")
    rows = list(csv.DictReader(path.read_text().splitlines()))
    pause = float(data.get("secondsPerRow", SECONDS_PER_ROW))
    imported = 0
    for number, row in enumerate(rows, start=1):
        if context.cancelled:
            raise RuntimeError(f"cancelled after {number - 1} of {len(rows)} rows")
        problem = _problem(row)
        if problem:
            context.log_error(problem, item=f"row {number}", details=row)
        else:
            imported += 1
        context.progress(number, len(rows))
        time.sleep(pause)
    return {"imported": imported, "rejected": len(rows) - imported}


def _problem(row: dict[str, Any]) -> str | None:
    if not row.get("email"):
        return "no email"
    if not ZIP.fullmatch(row.get("zip") or ""):
        return f"bad zip code {row.get('zip')!r}"
    return None


def geocode(context: JobContext) -> dict[str, Any]:
    address = (context.data or {}).get("address", "")
    if context.attempt == 1:
        raise ConnectionError("the geocoder timed out (this example fails every first attempt)")
    digest = hashlib.sha256(address.encode()).digest()
    latitude = digest[0] / 255 * 180 - 90
    longitude = digest[1] / 255 * 360 - 180
    return {"address": address, "lat": round(latitude, 4), "lon": round(longitude, 4)}


handlers = {"import_voters": import_voters, "geocode": geocode}
