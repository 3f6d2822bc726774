"""``python -m bench.crud_baseline --db URL --port P``: serves the baseline under uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from bench.crud_baseline.app import DATABASE_URL_VARIABLE, SECRET_VARIABLE

GRACEFUL_SHUTDOWN_SECONDS = 30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crud_baseline", description=__doc__)
    parser.add_argument("--db", required=True, help="sqlite:////path.db or postgresql://...")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if len(os.environ.get(SECRET_VARIABLE, "").encode()) < 32:
        print(f"crud_baseline: {SECRET_VARIABLE} must hold at least 32 bytes", file=sys.stderr)
        return 2
    os.environ[DATABASE_URL_VARIABLE] = args.db
    uvicorn.run(
        "bench.crud_baseline.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
