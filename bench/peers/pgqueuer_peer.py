"""PgQueuer's side of the peers benchmark (``peer_common`` describes the commands).

Configured as its documentation has it: an ``AsyncpgDriver`` on one asyncpg connection, the
schema installed ``durable`` (its default: every table logged, as the other systems' are), an
``async`` entrypoint, ``PgQueuer.run`` on uvloop (as ``pgq run`` does). The worker's
concurrency is ``max_concurrent_tasks``; PgQueuer requires it to be at least twice the batch
size, so the batch is half of it (a larger batch than the limit stalls it). Each producer
enqueues through its own connection. Finished jobs leave ``pgqueuer``; timestamps: the ``queued``
and ``successful`` rows of ``pgqueuer_log``.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg
from peer_common import JOB_NAME, Insert, chunks, parse, run, steady, stop_event
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries


async def main(args: argparse.Namespace) -> None:
    connection = await asyncpg.connect(args.dsn)
    try:
        driver = AsyncpgDriver(connection)
        if args.command == "install":
            await Queries(driver).install()
        elif args.command == "seed":
            queries = Queries(driver)
            for chunk in chunks(args.jobs):
                await queries.enqueue(
                    [JOB_NAME] * len(chunk), [str(n).encode() for n in chunk], [0] * len(chunk)
                )
        elif args.command == "worker":
            await work(driver, args.concurrency)
        else:
            await produce(args)
    finally:
        await connection.close()


async def work(driver: AsyncpgDriver, concurrency: int) -> None:
    pgq = PgQueuer(driver)

    @pgq.entrypoint(JOB_NAME)
    async def noop(job: Job) -> None:
        return None

    stopped = stop_event()

    async def stop_when_told() -> None:
        await stopped.wait()
        pgq.shutdown.set()

    watcher = asyncio.create_task(stop_when_told())
    await pgq.run(batch_size=max(1, concurrency // 2), max_concurrent_tasks=concurrency)
    watcher.cancel()


async def produce(args: argparse.Namespace) -> None:
    connections = [await asyncpg.connect(args.dsn) for _ in range(args.producers)]
    try:
        inserters = [inserter(Queries(AsyncpgDriver(each))) for each in connections]
        await steady(args, inserters)
    finally:
        for each in connections:
            await each.close()


def inserter(queries: Queries) -> Insert:
    async def insert(number: int) -> None:
        await queries.enqueue(JOB_NAME, str(number).encode())

    return insert


if __name__ == "__main__":
    run(main(parse()))
