"""jobledger's steady producer for the peers benchmark (``peer_common`` describes it).

Runs from the project's venv with the repository on ``PYTHONPATH``. Each producer creates one
job per ``POST /api/v1/jobs`` on its own keep-alive connection (the benchmarks' minimal asyncio
client, so the producer spends little of the machine's CPU); the API answers once the job is in
the read model, so the unfinished count read from ``job_summary_counts`` already holds it. The
other commands are the orchestrator's (``bench/bench_peers.py``): it seeds through the ledger
and runs ``jobledger worker`` itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from peer_common import JOB_NAME, Insert, parse, run, steady

from bench.bench_http_load import Connection


class CreateRefused(RuntimeError):
    """Raised when the API did not answer a create with 201."""


def inserter(connection: Connection) -> Insert:
    async def insert(number: int) -> None:
        body = {"type": JOB_NAME, "data": {"n": number}}
        status, content = await connection.request("POST", "/api/v1/jobs", body)
        if status != 201:
            raise CreateRefused(f"POST /api/v1/jobs answered {status}: {content[:300]!r}")

    return insert


async def main(args: argparse.Namespace) -> None:
    if args.command != "steady":
        raise SystemExit(f"jobledger_peer.py: {args.command} is the orchestrator's to do")
    port = urlsplit(args.url).port
    if port is None:
        raise SystemExit("jobledger_peer.py: --url needs a port")
    token = Path(args.token_file).read_text().strip()
    connections = [Connection(port, token) for _ in range(args.producers)]
    try:
        await steady(args, [inserter(each) for each in connections])
    finally:
        for each in connections:
            await each.close()


if __name__ == "__main__":
    run(main(parse()))
