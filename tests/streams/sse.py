"""A small reader of server-sent events for the tests, and ways to make many events quickly."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.served import Api

READ_SECONDS = 60.0


@dataclass
class Received:
    position: int
    name: str
    data: dict[str, Any]


@dataclass
class Listener:
    """Reads a stream on a thread into ``events`` until it has ``until`` of them or it ends."""

    events: list[Received] = field(default_factory=list)
    status: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    got_enough: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)


def parse(lines: Iterator[str]) -> Iterator[Received]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields and "id" in fields:
                data = json.loads(fields["data"])
                yield Received(int(fields["id"]), fields.get("event", ""), data)
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@contextmanager
def listening(
    api: Api, token: str, *, until: int, params: Any = None, headers: dict[str, str] | None = None
) -> Iterator[Listener]:
    """A stream read on a thread until it has ``until`` events; closed on exit."""
    listener = Listener()
    stop = threading.Event()

    def read() -> None:
        try:
            with httpx.stream(
                "GET", f"{api.url}/api/v1/events", params=params, timeout=READ_SECONDS,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
            ) as response:  # fmt: skip
                listener.status = response.status_code
                listener.opened.set()
                if response.status_code != 200:
                    return
                for event in parse(response.iter_lines()):
                    listener.events.append(event)
                    if len(listener.events) >= until:
                        listener.got_enough.set()
                        return
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            pass
        finally:
            listener.opened.set()
            listener.ended.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        assert listener.opened.wait(READ_SECONDS), "the stream did not open"
        yield listener
    finally:
        stop.set()


def started_jobs(api: Api, job_type: str, count: int) -> list[str]:
    """``count`` running jobs of a new type: 2 events each (Created, Started)."""
    job_ids = [api.create(job_type) for _ in range(count)]
    for job_id in job_ids:
        answer = api.http.post(f"/api/v1/jobs/{job_id}/start")
        assert answer.status_code == 200, answer.text
    return job_ids


def progress_events(api: Api, job_ids: list[str], per_job: int) -> None:
    """``per_job`` progress events on each job, 100 commands per request."""
    commands = [
        {"jobId": job_id, "op": "progress", "processedItems": step}
        for step in range(1, per_job + 1)
        for job_id in job_ids
    ]
    for first in range(0, len(commands), 100):
        batch = {"commands": commands[first : first + 100]}
        answer = api.http.post("/api/v1/jobs/commands", json=batch)
        assert answer.status_code == 200, answer.text
        assert {r["status"] for r in answer.json()["results"]} == {200}, answer.text
