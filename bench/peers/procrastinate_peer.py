"""procrastinate's side of the peers benchmark (``peer_common`` describes the commands).

Configured as its documentation has it: a ``PsycopgConnector`` (psycopg 3 pool), an ``async``
task, ``App.run_worker_async`` with LISTEN/NOTIFY on (its default) and finished jobs kept (its
default, ``delete_jobs="never"``); run on the standard event loop, as its command line does. The
pool holds ``concurrency + 2`` connections: the default of 4 would make 10 jobs queue for them.
Timestamps: the ``deferred`` and ``succeeded`` rows of ``procrastinate_events`` (its triggers).
"""

from __future__ import annotations

import argparse
import contextlib

import procrastinate
from peer_common import JOB_NAME, chunks, parse, run, steady

QUEUE = "bench"


def make_app(dsn: str, connections: int) -> tuple[procrastinate.App, procrastinate.tasks.Task]:
    connector = procrastinate.PsycopgConnector(
        conninfo=dsn, min_size=connections, max_size=connections
    )
    app = procrastinate.App(connector=connector)

    async def noop(n: int) -> None:
        return None

    task = app.task(name=JOB_NAME, queue=QUEUE)(noop)
    return app, task


async def main(args: argparse.Namespace) -> None:
    connections = max(args.concurrency, args.producers) + 2
    app, task = make_app(args.dsn, connections)
    async with app.open_async():
        if args.command == "install":
            await app.schema_manager.apply_schema_async()
        elif args.command == "seed":
            for chunk in chunks(args.jobs):
                await task.batch_defer_async(*({"n": n} for n in chunk))
        elif args.command == "worker":
            with contextlib.suppress(KeyboardInterrupt):
                await app.run_worker_async(queues=[QUEUE], concurrency=args.concurrency, wait=True)
        else:

            async def insert(number: int) -> None:
                await task.defer_async(n=number)

            await steady(args, [insert] * args.producers)


if __name__ == "__main__":
    arguments = parse()
    run(main(arguments), uvloop=False)
