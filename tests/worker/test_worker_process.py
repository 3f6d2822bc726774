"""``jobledger worker`` as a process: SIGTERM lets running jobs finish, kill -9 loses nothing.

The handlers live in a module written into the test's directory (the worker's current
directory, which it makes importable); a handler blocks until the test creates a gate file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.eventually import eventually
from tests.served import LEASE_SECONDS, Api, running
from tests.worker.test_handlers import WAIT_SECONDS, finished, worker_for
from worker import JobContext
from worker.runner import EXIT_ABANDONED

HANDLERS = textwrap.dedent(
    """
    import os, pathlib, time

    HERE = pathlib.Path(__file__).parent

    def gated(context):
        (HERE / f"started-{context.id}").touch()
        while not (HERE / "gate").exists():
            time.sleep(0.01)
        return "finished after the gate"

    handlers = {os.environ["SDK_TEST_TYPE"]: gated}
    """
)


@contextmanager
def worker_process(
    api: Api, workdir: Path, job_type: str, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    workdir.mkdir()
    (workdir / "gated_handlers.py").write_text(HANDLERS)
    command = [
        str(Path(sys.executable).with_name("jobledger")), "worker", "--url", api.url,
        "--handlers", "gated_handlers:handlers", "--concurrency", "3", "--name", name,
        "--lease-seconds", str(LEASE_SECONDS), "--grace-seconds", str(WAIT_SECONDS),
    ]  # fmt: skip
    env = {**os.environ, "JOBLEDGER_TOKEN": api.token, "SDK_TEST_TYPE": job_type}
    with (workdir / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT_SECONDS)


def all_started(workdir: Path, job_ids: list[str]) -> None:
    eventually(
        lambda: all((workdir / f"started-{job_id}").exists() for job_id in job_ids),
        WAIT_SECONDS, what="every job's handler to start",
    )  # fmt: skip


def test_sigterm_stops_claiming_and_lets_running_jobs_finish(api: Api, tmp_path: Path) -> None:
    job_type = f"gated-{uuid.uuid4().hex[:8]}"
    workdir = tmp_path / "worker"
    job_ids = [api.create(job_type) for _ in range(3)]
    with worker_process(api, workdir, job_type, "terminated") as process:
        all_started(workdir, job_ids)
        process.send_signal(signal.SIGTERM)
        late = api.create(job_type)
        (workdir / "gate").touch()
        status = process.wait(WAIT_SECONDS)
    log = (workdir / "worker.log").read_text()
    assert status == 0, log
    for job_id in job_ids:
        job = api.job(job_id)
        assert (job["status"], job["result"]) == ("completed", "finished after the gate"), log
        assert f"job {job_id} attempt 1 completed" in log
    assert api.job(late)["status"] == "pending", "a stopping worker claimed a new job"


def test_kill_9_of_a_worker_loses_nothing_a_second_worker_completes_each_job_once(
    api: Api, tmp_path: Path
) -> None:
    job_type = f"doomed-{uuid.uuid4().hex[:8]}"
    workdir = tmp_path / "worker"
    job_ids = [api.create(job_type) for _ in range(3)]
    with worker_process(api, workdir, job_type, "doomed") as process:
        all_started(workdir, job_ids)
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT_SECONDS)

    def rescue(context: JobContext) -> str:
        return f"rescued on attempt {context.attempt}"

    with running(worker_for(api, {job_type: rescue}, name="rescuer")):
        jobs = [finished(api, job_id) for job_id in job_ids]
    for job in jobs:
        assert (job["status"], job["result"]) == ("completed", "rescued on attempt 2")
        assert [(a["attempt"], a["worker"], a["outcome"]) for a in job["attempts"]] == [
            (1, "doomed", "lease-expired"), (2, "rescuer", "completed"),
        ]  # fmt: skip
        assert api.event_types(job["id"]) == [
            "Created", "Started", "LeaseExpired", "Started", "Completed",
        ]  # fmt: skip


def test_a_handler_still_running_after_the_grace_period_is_abandoned_with_exit_1(
    api: Api,
) -> None:
    job_type = f"stuck-{uuid.uuid4().hex[:8]}"
    release = threading.Event()
    started = threading.Event()

    def stuck(context: JobContext) -> str:
        started.set()
        release.wait(WAIT_SECONDS)
        return "too late"

    job_id = api.create(job_type)
    worker = worker_for(api, {job_type: stuck}, grace_seconds=0.2)
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(worker.run()))
    thread.start()
    try:
        assert started.wait(WAIT_SECONDS), "the handler never started"
        worker.stop()
        thread.join(WAIT_SECONDS)
    finally:
        release.set()
    assert statuses == [EXIT_ABANDONED]
    job = api.job(job_id)
    assert (job["status"], job["worker"]) == ("processing", worker.name), "left for the sweeper"
