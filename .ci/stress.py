"""``make stress``: the whole suite N times, in random order, beside CPU-bound load; a flake table.

Run it before submitting a change that touched timing (leases, waits, streams, timeouts). Each
run is ``CI=true pytest --random-order`` with its own seed (printed, so a failure can be run
again in the same order: ``pytest --random-order-seed=SEED``) and a JUnit report; ``--load K``
starts K busy-looping processes for the run, as a busy CI machine would have. The table lists
every test that failed at least once, how often, in which runs, and its first failure line.
Exit status: 0 when no test failed, 1 otherwise.

    python .ci/stress.py [--runs N] [--load K] [--idle-runs M] [pytest args ...]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BURN = "while True: pass"


@dataclass
class Flake:
    """One test that failed in at least one run."""

    runs: list[int] = field(default_factory=list)
    first_message: str = ""


@dataclass
class Run:
    number: int
    seed: int
    load: int
    seconds: float
    exit_status: int
    tests: int
    failed: list[tuple[str, str]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4, help="runs of the suite (default 4)")
    parser.add_argument(
        "--load", type=int, default=2, help="CPU-bound processes beside a loaded run (default 2)"
    )
    parser.add_argument(
        "--idle-runs", type=int, default=None,
        help="how many of the runs have no load beside them (default: half, rounded down)",
    )  # fmt: skip
    args, pytest_args = parser.parse_known_args()
    idle = args.runs // 2 if args.idle_runs is None else args.idle_runs
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="jobledger-stress-") as folder:
        for number in range(1, args.runs + 1):
            load = 0 if number <= idle else args.load
            results.append(_run(number, load, Path(folder), pytest_args))
            _print_run(results[-1])
    _print_table(results)
    return 0 if all(not run.failed and run.exit_status == 0 for run in results) else 1


def _run(number: int, load: int, folder: Path, pytest_args: list[str]) -> Run:
    seed = random.randrange(1, 2**31)
    report = folder / f"run-{number}.xml"
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(load)]
    started = time.monotonic()
    try:
        exit_status = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--random-order", f"--random-order-seed={seed}", f"--junitxml={report}",
             *pytest_args],
            env={**os.environ, "CI": "true"},
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    tests, failed = _read_report(report)
    return Run(number, seed, load, time.monotonic() - started, exit_status, tests, failed)


def _read_report(report: Path) -> tuple[int, list[tuple[str, str]]]:
    """The number of tests and the (test id, first message line) of each failure or error."""
    if not report.exists():
        return 0, [("(no report: the run did not finish)", "")]
    root = ElementTree.parse(report).getroot()
    tests = 0
    failed: list[tuple[str, str]] = []
    for case in root.iter("testcase"):
        tests += 1
        for problem in (*case.findall("failure"), *case.findall("error")):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            failed.append((name, message[0][:160] if message else ""))
    return tests, failed


def _print_run(run: Run) -> None:
    print(
        f"run {run.number}: seed {run.seed}, load {run.load}, {run.tests} tests, "
        f"{len(run.failed)} failed, exit {run.exit_status}, {run.seconds:.0f} s",
        flush=True,
    )


def _print_table(results: list[Run]) -> None:
    flakes: dict[str, Flake] = defaultdict(Flake)
    for run in results:
        for name, message in run.failed:
            flake = flakes[name]
            flake.runs.append(run.number)
            flake.first_message = flake.first_message or message
    print(f"\n{len(results)} runs, {sum(1 for r in results if not r.failed)} clean")
    if not flakes:
        print("no test failed")
        return
    print(f"{'failures':>8}  {'runs':<12}  test: first failure")
    for name, flake in sorted(flakes.items(), key=lambda item: -len(item[1].runs)):
        runs = ",".join(str(n) for n in flake.runs)
        print(f"{len(flake.runs):>5}/{len(results):<2}  {runs:<12}  {name}: {flake.first_message}")


if __name__ == "__main__":
    sys.exit(main())
