"""``python -m bench``: runs every ``bench/bench_<name>.py`` module and reports its figures.

Options: ``--only NAME`` (repeatable, or comma-separated; ``write_path`` or ``bench_write_path``)
runs a subset; ``--quick`` runs smoke-size workloads. Full runs write ``bench/results.json`` and
``bench/results.md``; quick runs write them to ``bench/out/`` (ignored by git) unless ``--output``
says otherwise. Exits 1 when a benchmark raised, 2 on an unknown name.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

import bench
from bench.results import Figure, print_table, write_results

PREFIX = "bench_"
BENCH_DIR = Path(bench.__file__).resolve().parent

Runner = Callable[[bool], list[Figure]]


def discover() -> list[str]:
    """Names of the benchmark modules in this package, without the ``bench_`` prefix, sorted."""
    return sorted(
        info.name.removeprefix(PREFIX)
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith(PREFIX) and not info.ispkg
    )


def select(available: list[str], only: list[str]) -> list[str]:
    """The benchmarks ``--only`` names (all when empty); raises ValueError on an unknown name."""
    wanted = [name.strip().removeprefix(PREFIX) for item in only for name in item.split(",")]
    wanted = [name for name in wanted if name]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        names = ", ".join(available)
        raise ValueError(f"unknown benchmark {', '.join(unknown)}; available: {names}")
    return [name for name in available if name in wanted] if wanted else available


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable or comma-separated)")
    parser.add_argument("--quick", action="store_true", help="smoke-size workloads")
    parser.add_argument("--output", type=Path, default=None,
                        help="directory for results.json and results.md "
                        "(default: bench/, or bench/out/ with --quick)")
    return parser.parse_args(argv)


def run_one(name: str, quick: bool, console: Console) -> tuple[list[Figure], str] | None:
    """Runs one benchmark; returns its figures and description, or None when it raised."""
    console.rule(f"bench {name}{' (quick)' if quick else ''}")
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{PREFIX}{name}")
        runner: Runner = module.run
        figures = runner(quick)
    except Exception:
        console.print(f"[red]bench {name} failed:[/red]\n{traceback.format_exc()}")
        return None
    console.print(f"bench {name}: {len(figures)} figures in {time.perf_counter() - started:.0f} s")
    return figures, inspect.cleandoc(module.__doc__ or name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    try:
        names = select(discover(), args.only)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    figures: list[Figure] = []
    descriptions: dict[str, str] = {}
    failed: list[str] = []
    for name in names:
        outcome = run_one(name, args.quick, console)
        if outcome is None:
            failed.append(name)
            continue
        figures += outcome[0]
        descriptions[name] = outcome[1]
    print_table(figures, console)
    if figures:
        output = args.output or (BENCH_DIR / "out" if args.quick else BENCH_DIR)
        options = " ".join(sys.argv[1:] if argv is None else argv)
        paths = write_results(figures, output, descriptions=descriptions, options=options)
        console.print(f"wrote {', '.join(str(path) for path in paths)}")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
