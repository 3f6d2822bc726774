"""Oban for Python's side of the peers benchmark (``peer_common`` describes the commands).

Package ``oban`` (oban-bg/oban-py, Python >= 3.12). Configured as its documentation has it: a
pool from ``Oban.create_pool``, the schema from ``oban.schema.install``, an ``async`` worker
class, ``Oban(pool=..., queues={"bench": concurrency})`` on uvloop (as ``oban start`` does),
every other plugin at its default (its pruner keeps finished jobs for a day). The pool holds
``concurrency + 2`` connections (its default is 10). Timestamps: ``inserted_at`` and
``completed_at`` of ``oban_jobs``.
"""

from __future__ import annotations

import argparse

from oban import Job, Oban, worker
from oban.schema import install
from peer_common import Insert, chunks, parse, run, steady, stop_event

QUEUE = "bench"


@worker(queue=QUEUE)
class Noop:
    """The no-op job."""

    async def process(self, job: Job) -> None:
        return None


async def main(args: argparse.Namespace) -> None:
    connections = max(args.concurrency, args.producers) + 2
    pool = await Oban.create_pool(args.dsn, min_size=connections, max_size=connections)
    try:
        if args.command == "install":
            await install(pool)
        elif args.command == "seed":
            client = Oban(pool=pool)
            for chunk in chunks(args.jobs):
                await client.enqueue_many([Noop.new({"n": n}) for n in chunk])
        elif args.command == "worker":
            stopped = stop_event()
            async with Oban(pool=pool, queues={QUEUE: args.concurrency}):
                await stopped.wait()
        else:
            client = Oban(pool=pool)
            await steady(args, [inserter(client)] * args.producers)
    finally:
        await pool.close()


def inserter(client: Oban) -> Insert:
    async def insert(number: int) -> None:
        await client.enqueue(Noop.new({"n": number}))

    return insert


if __name__ == "__main__":
    run(main(parse()))
