"""``GET /api/v1/events`` on every store: order, resumption, visibility, limits, slow clients."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx

from tests.served import Api
from tests.streams.sse import READ_SECONDS, listening, progress_events, started_jobs

#: Error events of about 4 KiB each (the message twice: in the event and in the job's row).
STALL_ERRORS = 2_000


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def burst(api: Api, job_type: str) -> list[str]:
    """1,000 events of ``job_type``: 20 jobs created and started, then 48 progress events each."""
    job_ids = started_jobs(api, job_type, 20)
    progress_events(api, job_ids, 48)
    return job_ids


def test_a_stream_carries_every_event_of_a_burst_in_log_order(api: Api) -> None:
    job_type = unique("burst")
    with listening(api, api.token, until=1_000, params={"type": job_type}) as stream:
        job_ids = burst(api, job_type)
        assert stream.got_enough.wait(READ_SECONDS), f"only {len(stream.events)} events arrived"
    positions = [event.position for event in stream.events]
    assert positions == sorted(set(positions)), "not in log order, or some twice"
    for job_id in job_ids:
        mine = [event for event in stream.events if event.data["jobId"] == job_id]
        assert [event.data["version"] for event in mine] == list(range(1, 51))
        assert [event.name for event in mine[:3]] == ["job.created", "job.started", "job.progress"]
        last = mine[-1].data
        assert (last["type"], last["data"]["processedItems"]) == ("ProgressUpdated", 48)
        assert (last["job"]["id"], last["job"]["processedItems"], last["job"]["version"]) == (
            job_id, 48, 50,
        )  # fmt: skip


def test_a_client_that_reconnects_with_last_event_id_gets_the_rest_and_nothing_twice(
    api: Api,
) -> None:
    job_type = unique("resume")
    params = {"type": job_type}
    with listening(api, api.token, until=300, params=params) as first:
        burst(api, job_type)
        assert first.got_enough.wait(READ_SECONDS), f"only {len(first.events)} events arrived"
    resume_after = first.events[-1].position
    headers = {"Last-Event-ID": str(resume_after)}
    with listening(api, api.token, until=700, params=params, headers=headers) as second:
        assert second.got_enough.wait(READ_SECONDS), f"only {len(second.events)} replayed"
    seen = [event.position for event in first.events + second.events]
    assert len(seen) == len(set(seen)) == 1_000
    assert min(event.position for event in second.events) > resume_after
    with listening(api, api.token, until=1, params={**params, "after": resume_after}) as by_query:
        assert by_query.got_enough.wait(READ_SECONDS)
    assert by_query.events[0].position == second.events[0].position


def member(api: Api, name: str) -> str:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    made = api.http.post(
        "/api/v1/users", json={"email": email, "password": "member password", "role": "member"}
    )
    assert made.status_code == 201, made.text
    token = httpx.post(
        f"{api.url}/api/v1/auth/token", data={"username": email, "password": "member password"}
    )
    assert token.status_code == 200, token.text
    access: str = token.json()["access_token"]
    return access


def create_as(api: Api, token: str, job_type: str) -> str:
    answer = httpx.post(
        f"{api.url}/api/v1/jobs", json={"type": job_type},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_a_members_stream_carries_none_of_another_members_jobs(api: Api) -> None:
    alice, bob = member(api, "alice"), member(api, "bob")
    job_type = unique("private")
    with listening(api, alice, until=1, params={"type": job_type}) as stream:
        bobs = [create_as(api, bob, job_type) for _ in range(3)]
        alices = create_as(api, alice, job_type)
        assert stream.got_enough.wait(READ_SECONDS), "alice never saw her own job"
    assert [event.data["jobId"] for event in stream.events] == [alices]
    assert alices not in bobs


def test_filters_narrow_a_stream_to_jobs_and_event_names(api: Api) -> None:
    job_type = unique("filtered")
    watched, other = started_jobs(api, job_type, 2)
    params: Any = {"jobId": watched, "event": ["job.progress", "job.completed"]}
    with listening(api, api.token, until=2, params=params) as stream:
        progress_events(api, [other, watched], 1)
        done = api.http.post(f"/api/v1/jobs/{watched}/complete", json={"result": 1})
        assert done.status_code == 200, done.text
        assert stream.got_enough.wait(READ_SECONDS)
    assert [(e.data["jobId"], e.name) for e in stream.events] == [
        (watched, "job.progress"), (watched, "job.completed"),
    ]  # fmt: skip


def test_an_empty_last_event_id_is_no_id_at_all(api: Api) -> None:
    job_type = unique("empty-id")
    with listening(api, api.token, until=1, params={"type": job_type},
                   headers={"Last-Event-ID": ""}) as stream:  # fmt: skip
        assert stream.status == 200
        api.create(job_type)
        assert stream.got_enough.wait(READ_SECONDS)
    assert stream.events[0].name == "job.created"


def test_bad_positions_and_unknown_event_names_are_422(api: Api) -> None:
    assert api.http.get("/api/v1/events", headers={"Last-Event-ID": "soon"}).status_code == 422
    assert api.http.get("/api/v1/events", params={"after": -1}).status_code == 422
    unknown = api.http.get("/api/v1/events", params={"event": "job.exploded"})
    assert unknown.status_code == 422
    assert "job.completed" in unknown.text, "the problem should name the known events"
    assert httpx.get(f"{api.url}/api/v1/events").status_code == 401


def test_a_user_may_hold_five_streams_the_sixth_is_429(api: Api) -> None:
    token = member(api, "greedy")
    streams = [listening(api, token, until=1) for _ in range(5)]
    opened = [stream.__enter__() for stream in streams]
    try:
        assert [listener.status for listener in opened] == [200] * 5
        with listening(api, token, until=1) as sixth:
            assert sixth.status == 429
    finally:
        for stream in streams:
            stream.__exit__(None, None, None)


def test_a_stream_ends_once_its_user_is_disabled(api: Api) -> None:
    token = member(api, "leaving")
    me = httpx.get(f"{api.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    with listening(api, token, until=1) as stream:
        disabled = api.http.patch(f"/api/v1/users/{me.json()['id']}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        assert stream.ended.wait(READ_SECONDS), "the stream outlived its user's account"


def test_a_stalled_client_is_cut_off_while_another_keeps_up(api: Api) -> None:
    """The stalled client reads nothing: once the server's socket buffer (up to 4 MiB here) and
    the stream's buffer are full, its stream ends; the other client gets every event."""
    job_type = unique("stall")
    job_ids = started_jobs(api, job_type, 10)
    errors = [
        {"jobId": job_id, "op": "errors", "message": f"row {row}: " + "x" * 1_900}
        for row in range(STALL_ERRORS // len(job_ids))
        for job_id in job_ids
    ]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", api.server.port))
    stalled.sendall(
        f"GET /api/v1/events?type={job_type} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {api.token}\r\n\r\n".encode()
    )
    try:
        params = {"type": job_type}
        with listening(api, api.token, until=STALL_ERRORS, params=params) as keeping_up:
            for first in range(0, len(errors), 25):
                commands = {"commands": errors[first : first + 25]}
                batch = api.http.post("/api/v1/jobs/commands", json=commands)
                assert batch.status_code == 200, batch.text
            assert keeping_up.got_enough.wait(READ_SECONDS), (
                f"the reading client got only {len(keeping_up.events)} of {STALL_ERRORS} events"
            )
        stalled.settimeout(READ_SECONDS)
        received = b""
        while chunk := stalled.recv(1 << 20):
            received += chunk
    finally:
        stalled.close()
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert received.count(b"\nid: ") < STALL_ERRORS, "the stalled client got every event anyway"
