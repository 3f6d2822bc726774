"""Profiles jobledger's side of the peers benchmark with py-spy (not a benchmark: not discovered).

``python -m bench.profile_peers [--workload drain|steady] [--jobs N] [--seconds S] [--rate HZ]
[--output DIR]`` runs jobledger's drain (default 5,000 jobs) or steady workload exactly as
``bench_peers`` does, with ``py-spy record`` (from the peers' venv) attached to the server and
the worker for the measured part, and prints where each process spends its samples: by thread,
by the function on top of the stack (self) and by every function on it (inclusive). Without
``--gil`` a sample is taken of every thread not idle (waits on PostgreSQL count: where the wall
time goes); with it, only of the thread holding the GIL (where the Python CPU goes). The raw stacks
(``--format raw``, one collapsed stack per line) stay in DIR (default ``bench/out/profile-peers``)
for a flame graph. Sampling slows both processes a little: its figures are not the benchmark's.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.bench_peers import FULL, Observer, Plan, describe, drain, run_directory, steady
from bench.peers import venv
from bench.peers.systems import Jobledger
from bench.results import REPOSITORY

PY_SPY = venv.VENV / "bin" / "py-spy"
STOP_TIMEOUT_SECONDS = 60
TOP = 25
#: ``function (path:line)`` -> ``function (file)``: one entry per function, whatever the line.
FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^():]*)(?::\d+)?\)$")
#: ``--threads`` puts ``thread (<id>): <name>`` at the bottom of each stack.
THREAD = re.compile(r"^thread \(\d+\): (?P<name>.*)$")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_peers",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--workload", choices=("drain", "steady"), default="drain")
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=FULL.seconds)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument(
        "--gil", action="store_true",
        help="sample only the thread holding the GIL: where the Python CPU goes, not the waits",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=REPOSITORY / "bench/out/profile-peers")
    return parser.parse_args()


def recorder(output: Path, rate: int, gil: bool) -> Observer:
    """The observer ``bench_peers`` calls: py-spy on the worker and the server meanwhile."""

    @contextmanager
    def observe(worker_pid: int, server_pid: int | None) -> Iterator[None]:
        pids = {"worker": worker_pid, **({"server": server_pid} if server_pid else {})}
        spies = {role: spy(pid, output / f"{role}.txt", rate, gil) for role, pid in pids.items()}
        try:
            yield
        finally:
            for process in spies.values():
                process.send_signal(signal.SIGINT)
            for role, process in spies.items():
                _, errors = process.communicate(timeout=STOP_TIMEOUT_SECONDS)
                if process.returncode not in (0, -signal.SIGINT):
                    print(f"py-spy on the {role} exited {process.returncode}: {errors.decode()}")

    return observe


def spy(pid: int, output: Path, rate: int, gil: bool) -> subprocess.Popen[bytes]:
    command = [
        str(PY_SPY), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
        "--subprocesses", "--nonblocking", "--threads", "--output", str(output),
        *(["--gil"] if gil else []),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def function(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['function']} ({Path(match['path']).name})"


def summarise(path: Path) -> str:
    """The top functions by self and by inclusive samples, as shares of all samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [function(frame) for frame in stack.split(";")]
        named = [match["name"] for frame in frames if (match := THREAD.match(frame))]
        threads[named[0] if named else "?"] += samples
        frames = [frame for frame in frames if not THREAD.match(frame)]
        total += samples
        own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.stem}: {total:,} samples", "  threads (by name):"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in threads.most_common(TOP)]
    lines += ["  self:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(TOP)]
    lines += ["  inclusive:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(TOP)]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if not PY_SPY.exists():
        venv.ensure()
    args.output.mkdir(parents=True, exist_ok=True)
    plan = Plan(jobs=args.jobs, seconds=args.seconds, drain_limit=FULL.drain_limit)
    workload = drain if args.workload == "drain" else steady
    system = Jobledger()
    directory = run_directory(system, f"{args.workload}-profiled")
    outcome = workload(system, plan, directory, recorder(args.output, args.rate, args.gil))
    print(f"jobledger {args.workload} under py-spy: {describe(outcome)}")
    for role in ("server", "worker"):
        if (args.output / f"{role}.txt").exists():
            print(summarise(args.output / f"{role}.txt"))


if __name__ == "__main__":
    main()
