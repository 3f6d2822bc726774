"""Peers: ``jobledger worker`` beside procrastinate, PgQueuer and Oban for Python, no-op jobs.

Same machine, same PostgreSQL, same run. The peers are installed from PyPI into
``bench/out/peers-venv`` (Python 3.12, which Oban for Python needs; pins in
``bench/peers/requirements.txt``), never into the project's venv; a peer that will not install
or run is reported as such in the figures. Every system gets a fresh database for each workload
(created and dropped here), its own worker process at the same concurrency (10: on 2 cores the
worker, the server and PostgreSQL share the CPU, and 10 slots keep every worker's claims full
without one system's scheduler thrashing), and an ``async`` no-op handler. How each is
configured: ``bench/peers/<name>_peer.py``; jobledger: ``bench/peers/systems.py``.

Drain: 20,000 jobs (1,000 with ``--quick``) inserted beforehand with each system's bulk insert
(jobledger: through a ``JobLedger`` here, 16 threads, until its view shows them all), then
``ANALYZE`` (as autovacuum would do soon after), then the worker starts and runs until none is
left (5 minutes at most). Jobs/s = (n - 1) / (last completion - first
completion), from each system's own timestamps.

Steady: the worker runs while 8 producers insert one job per call (jobledger: ``POST
/api/v1/jobs``; the peers: their client's single-job insert) as fast as they can while at most
40 jobs are unfinished (4 x concurrency, counted from the system's tables every 10 ms), for a
2 s warm-up, then 30 s measured (5 s with ``--quick``). Jobs/s = jobs completed in the window
/ its length; latency = completion - insertion of the jobs inserted in it, from the system's own
timestamps (jobledger: ``job_summary.created_at`` / ``completed_at``, the events' times;
procrastinate: its ``deferred`` / ``succeeded`` events; PgQueuer: ``pgqueuer_log`` ``queued`` /
``successful``; Oban: ``inserted_at`` / ``completed_at``). A mean depth well under the bound
means the producers, not the worker, set the pace (printed).

CPU per job (``/proc/<pid>/stat``, sampled every 0.2 s): the worker process; the "server" is
jobledger's ``serve`` process plus the PostgreSQL backends connected to the run's database (for
a peer: its backends alone), so the two figures add up to each system's whole cost. Targets:
jobledger >= 1.0x procrastinate and Oban for Python, >= 0.5x PgQueuer, on both workloads; it
records three durable events (Created, Started, Completed) and a read-model row per job, which
none of the peers keeps. ``JOBLEDGER_BENCH_PEERS_JOBS``, ``..._SECONDS`` and ``..._SYSTEMS``
(comma-separated, jobledger always runs) change the sizes and the peers;
``JOBLEDGER_BENCH_PEERS_LEASE_SECONDS`` gives ``jobledger worker`` a lease other than its
default. Jobs that never complete (a lease lost, say) are printed, and jobledger's share of
completed jobs is a figure of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.bench_http_load import _tail, percentile
from bench.peers import venv
from bench.peers.monitor import Monitor
from bench.peers.systems import Jobledger, Peer, System
from bench.results import Figure
from bench.support import postgres_database

CONCURRENCY = 10
DEPTH = 4 * CONCURRENCY
PRODUCERS = 8
PEERS = ("procrastinate", "pgqueuer", "oban")
TARGETS = {"procrastinate": 1.0, "pgqueuer": 0.5, "oban": 1.0}
#: How long a steady run's worker runs before the producers start.
SETTLE_SECONDS = 2.0
WARMUP_SECONDS = 2.0
#: After the steady window, how long the worker may take to finish what is left.
TAIL_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 45.0
LOGS = venv.PEERS_DIR.parent / "out" / "peers-logs"


@dataclass(frozen=True)
class Plan:
    """Jobs per drain, seconds per steady window, and how long a drain may run."""

    jobs: int
    seconds: float
    drain_limit: float


FULL = Plan(jobs=20_000, seconds=30.0, drain_limit=300.0)
QUICK = Plan(jobs=1_000, seconds=5.0, drain_limit=60.0)


@dataclass
class Outcome:
    """One system on one workload: rates, latencies (ms) and CPU (ms per job)."""

    system: str
    workload: str
    jobs: int = 0
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    mean_depth: float = float("nan")
    unfinished: int = 0
    #: Jobs inserted (the drain's, or the steady producers' whole run) and how many completed.
    inserted: int = 0
    completed: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)


#: Called with the worker's and the server's pids around the measured part of a workload (the
#: profiler attaches there); the benchmark itself observes nothing.
Observer = Callable[[int, int | None], AbstractContextManager[object]]


def no_observer(worker_pid: int, server_pid: int | None) -> AbstractContextManager[object]:
    return nullcontext()


@contextmanager
def worker_process(command: list[str], log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The system's worker, stopped with SIGTERM (then SIGKILL) on the way out."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)


def wait_drained(
    monitor: Monitor, worker: subprocess.Popen[bytes], log: Path, limit: float
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if monitor.error is not None:
            raise RuntimeError(f"the monitor failed: {monitor.error!r}")
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited {worker.returncode}:\n{_tail(log)}")
        if monitor.unfinished == 0:
            return
        time.sleep(0.05)


def drain(system: System, plan: Plan, directory: Path, observe: Observer = no_observer) -> Outcome:
    """Seeds ``plan.jobs`` jobs, then runs the worker until none is left."""
    with ExitStack() as stack:
        system.prepare(stack.enter_context(postgres_database()), directory, stack)
        started = time.perf_counter()
        system.seed(plan.jobs)
        analyze(system.dsn)
        print(f"peers: {system.label}: seeded {plan.jobs:,} jobs in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        log = directory / "worker.log"
        with worker_process(system.worker_command(CONCURRENCY), log, venv.PEERS_DIR) as worker:
            monitor = Monitor(system.dsn, system.unfinished_sql, worker.pid, system.server_pid)
            try:
                monitor.start()
                with observe(worker.pid, system.server_pid):
                    wait_drained(monitor, worker, log, plan.drain_limit)
            finally:
                monitor.stop()
        rows = system.completions()
    outcome = Outcome(system.name, "drain", unfinished=monitor.unfinished, inserted=plan.jobs)
    outcome.completed = len(rows)
    completed = sorted(done for _, done in rows)
    if len(completed) < 2:
        raise RuntimeError(f"{len(completed)} of {plan.jobs:,} jobs completed")
    first, last = completed[0], completed[-1]
    outcome.jobs = len(completed) - 1
    outcome.rate = outcome.jobs / (last - first)
    charge(outcome, monitor, first, last)
    latencies = [(done - created) * 1000 for created, done in rows]
    outcome.p50, outcome.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return outcome


def steady(system: System, plan: Plan, directory: Path, observe: Observer = no_observer) -> Outcome:
    """Runs the worker while the producers keep at most ``DEPTH`` jobs unfinished."""
    with ExitStack() as stack:
        system.prepare(stack.enter_context(postgres_database()), directory, stack)
        log = directory / "worker.log"
        with worker_process(system.worker_command(CONCURRENCY), log, venv.PEERS_DIR) as worker:
            monitor = Monitor(system.dsn, system.unfinished_sql, worker.pid, system.server_pid)
            try:
                monitor.start()
                time.sleep(SETTLE_SECONDS)
                with observe(worker.pid, system.server_pid):
                    window = produce(system, plan)
                wait_drained(monitor, worker, log, TAIL_SECONDS)
            finally:
                monitor.stop()
        rows = system.completions()
    outcome = Outcome(system.name, "steady", unfinished=monitor.unfinished)
    outcome.inserted, outcome.completed = int(window["inserted"]), len(rows)
    start, end = window["window_start"], window["window_end"]
    done = [completed for _, completed in rows if start <= completed <= end]
    if not done:
        raise RuntimeError(f"no job completed in the window; the producer said {window}")
    outcome.jobs = len(done)
    outcome.rate = len(done) / (end - start)
    charge(outcome, monitor, start, end)
    latencies = [(completed - created) * 1000 for created, completed in rows
                 if start <= created <= end]  # fmt: skip
    outcome.p50, outcome.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    outcome.mean_depth = window["mean_depth"]
    return outcome


def analyze(dsn: str) -> None:
    """Gives the planner the seeded tables' statistics before the drain, as autovacuum would
    soon after a bulk insert (without them procrastinate's fetch slowed tenfold at 20,000)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("ANALYZE")


def produce(system: System, plan: Plan) -> dict[str, float]:
    """Runs the system's producers for the warm-up and the window; returns their report."""
    options = {
        "--seconds": plan.seconds, "--warmup": WARMUP_SECONDS, "--depth": DEPTH,
        "--producers": PRODUCERS, "--unfinished-sql": system.unfinished_sql,
    }  # fmt: skip
    command = [*system.steady_command(), *(f"{k}={v}" for k, v in options.items())]
    done = subprocess.run(
        command, cwd=venv.PEERS_DIR, capture_output=True, text=True, check=False,
        env={**os.environ, **(system.producer_environment() or {})},
        timeout=WARMUP_SECONDS + plan.seconds + TAIL_SECONDS,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the producers exited {done.returncode}: {done.stderr[-2000:]}")
    report: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def charge(outcome: Outcome, monitor: Monitor, start: float, end: float) -> None:
    """Sets the CPU per job (ms) spent between two instants."""
    worker, server, postgres = monitor.cpu_between(start, end)
    per_job = 1000 / outcome.jobs
    outcome.worker_cpu = worker * per_job
    outcome.server_cpu = (server + postgres) * per_job
    outcome.postgres_cpu = postgres * per_job


def run_directory(system: System, workload: str) -> Path:
    """A fresh ``bench/out/peers-logs/<system>-<workload>/``: the worker's and the server's logs
    (and jobledger's tokens and data folder), kept after the run for a look."""
    directory = LOGS / f"{system.name}-{workload}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def measure(system: System, workload: str, plan: Plan) -> Outcome:
    """One workload on one system; a failure becomes the outcome's error, never a skip."""
    started = time.perf_counter()
    try:
        workloads = {"drain": drain, "steady": steady}
        outcome = workloads[workload](system, plan, run_directory(system, workload))
    except Exception as error:
        outcome = Outcome(system.name, workload, error=f"{type(error).__name__}: {error}")
    print(f"peers: {system.label} {workload}: {describe(outcome)} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    return outcome


def describe(outcome: Outcome) -> str:
    if outcome.error:
        return f"FAILED: {outcome.error[:2000]}"
    text = (
        f"{outcome.jobs:,} jobs, {outcome.rate:,.0f} jobs/s, latency p50 {outcome.p50:,.0f} ms "
        f"p99 {outcome.p99:,.0f} ms, CPU per job: worker {outcome.worker_cpu:.3f} ms, server "
        f"{outcome.server_cpu:.3f} ms (of which PostgreSQL {outcome.postgres_cpu:.3f} ms)"
    )
    if outcome.workload == "steady":
        text += f", mean depth {outcome.mean_depth:.1f} of {DEPTH}"
    if outcome.unfinished:
        text += f", {outcome.unfinished} UNFINISHED"
    if outcome.completed < outcome.inserted:
        text += f", ONLY {outcome.completed:,} OF THE {outcome.inserted:,} JOBS INSERTED COMPLETED"
    return "; ".join([text, *outcome.notes])


def figures_for(
    workload: str, plan: Plan, ours: Outcome, theirs: Outcome, label: str
) -> list[Figure]:
    target = TARGETS[theirs.system]
    size = f"{plan.jobs:,} jobs" if workload == "drain" else f"{plan.seconds:.0f} s"
    prefix = f"peers {workload}"
    if theirs.error:
        return [Figure.compare(f"{prefix}: {label} FAILED, see the log", ours.rate, 0, "jobs/s")]
    figures = [
        Figure.compare(
            f"{prefix} ({size}): jobs/s vs {label} (target >= {target:.1f}x)",
            ours.rate, theirs.rate, "jobs/s",
        ),
    ]  # fmt: skip
    if workload == "steady":
        figures += [
            Figure.compare(f"{prefix}: latency p50 vs {label}", ours.p50, theirs.p50, "ms"),
            Figure.compare(f"{prefix}: latency p99 vs {label}", ours.p99, theirs.p99, "ms"),
        ]
    figures += [
        Figure.compare(
            f"{prefix}: worker CPU per job vs {label}", ours.worker_cpu, theirs.worker_cpu, "ms"
        ),
        Figure.compare(
            f"{prefix}: server + PostgreSQL CPU per job vs {label}",
            ours.server_cpu, theirs.server_cpu, "ms",
        ),
    ]  # fmt: skip
    return figures


def selected_peers() -> list[str]:
    names = os.environ.get("JOBLEDGER_BENCH_PEERS_SYSTEMS", ",".join(PEERS)).split(",")
    wanted = [name.strip() for name in names if name.strip() and name.strip() != "jobledger"]
    unknown = sorted(set(wanted) - set(PEERS))
    if unknown:
        raise ValueError(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    return wanted


def plan_for(quick: bool) -> Plan:
    base = QUICK if quick else FULL
    jobs = int(os.environ.get("JOBLEDGER_BENCH_PEERS_JOBS", base.jobs))
    seconds = float(os.environ.get("JOBLEDGER_BENCH_PEERS_SECONDS", base.seconds))
    return Plan(jobs=jobs, seconds=seconds, drain_limit=base.drain_limit)


def run(quick: bool) -> list[Figure]:
    plan = plan_for(quick)
    environment = venv.ensure()
    lease = os.environ.get("JOBLEDGER_BENCH_PEERS_LEASE_SECONDS")
    systems: list[System] = [Jobledger(float(lease) if lease else None)]
    labels: dict[str, str] = {}
    for name in selected_peers():
        if name in environment.broken:
            labels[name] = f"{name} (not installed)"
            print(f"peers: {name} does not work here: {environment.broken[name]}")
            continue
        peer = Peer(name, environment.versions[name], environment.python)
        labels[name] = peer.label
        systems.append(peer)
    outcomes: dict[tuple[str, str], Outcome] = {}
    for workload, order in (("drain", systems), ("steady", systems[::-1])):
        for system in order:
            outcomes[system.name, workload] = measure(system, workload, plan)
    figures: list[Figure] = []
    for workload in ("drain", "steady"):
        ours = outcomes["jobledger", workload]
        if ours.error:
            continue
        figures.append(Figure.compare(
            f"peers {workload}: jobledger's jobs completed / inserted (ref: every one)",
            ours.completed / ours.inserted if ours.inserted else 0.0, 1.0, "share",
        ))  # fmt: skip
        for name in selected_peers():
            theirs = outcomes.get((name, workload)) or Outcome(
                name, workload, error=environment.broken.get(name, "did not run")
            )
            figures += figures_for(workload, plan, ours, theirs, labels[name])
    failed = [w for w in ("drain", "steady") if outcomes["jobledger", w].error]
    if failed:
        raise RuntimeError(f"jobledger failed the {' and '.join(failed)} workload(s); see above")
    return figures
