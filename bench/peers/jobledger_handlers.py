"""The no-op handler ``jobledger worker --handlers jobledger_handlers:HANDLERS`` runs in the
peers benchmark (started with this folder as its current directory)."""

from __future__ import annotations

from peer_common import JOB_NAME

from worker import JobContext


async def noop(job: JobContext) -> None:
    return None


HANDLERS = {JOB_NAME: noop}
