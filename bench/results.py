"""Benchmark figures: the ``Figure`` record, the printed table, and the files a run writes.

``results.json`` is a JSON list of ``{name, value, unit, reference, ratio}`` dicts, one per figure.
``results.md`` is the readable summary: the same figures, what each benchmark measures, and the
machine, Python version and git commit they were measured on.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure beside its reference from the same run; ``ratio = value / reference``."""

    name: str
    value: float
    unit: str
    reference: float
    ratio: float

    @classmethod
    def compare(cls, name: str, value: float, reference: float, unit: str) -> Figure:
        """A figure whose ratio is computed from ``value`` and ``reference``."""
        ratio = value / reference if reference else float("nan")
        return cls(name, value, unit, reference, ratio)


def print_table(figures: list[Figure], console: Console | None = None) -> None:
    """Prints the figures as a table: value, reference and ratio side by side."""
    table = Table(title="jobledger benchmarks (ratio = value / reference)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("unit")
    table.add_column("ratio", justify="right")
    for figure in figures:
        table.add_row(
            figure.name,
            _number(figure.value),
            _number(figure.reference),
            figure.unit,
            f"{figure.ratio:.2f}x",
        )
    (console or Console()).print(table)


def write_results(
    figures: list[Figure],
    directory: Path,
    *,
    descriptions: dict[str, str],
    options: str,
) -> tuple[Path, Path]:
    """Writes ``results.json`` and ``results.md`` into ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "results.json"
    md_path = directory / "results.md"
    json_path.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    md_path.write_text(_markdown(figures, descriptions, options, machine_metadata()))
    return json_path, md_path


def machine_metadata() -> dict[str, str]:
    """Where the figures were measured: machine, interpreter, libraries and git commit."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git commit": _git_commit(),
        "cpu count": str(os.cpu_count()),
        "cpu model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eventsourcing": _package_version("eventsourcing"),
        "psycopg": _package_version("psycopg"),
        "sqlite library": sqlite3.sqlite_version,
    }


def _markdown(
    figures: list[Figure], descriptions: dict[str, str], options: str, metadata: dict[str, str]
) -> str:
    command = f"python -m bench {options}".strip()
    lines = [
        "# jobledger benchmark results",
        "",
        f"Run: `{command}`",
        "",
        "| figure | value | reference | unit | ratio |",
        "|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {f.name} | {_number(f.value)} | {_number(f.reference)} | {f.unit} | {f.ratio:.2f}x |"
        for f in figures
    ]
    lines += ["", "Ratio = value / reference, both measured in the same run.", ""]
    for name, description in descriptions.items():
        lines += [f"## {name}", "", description, ""]
    lines += ["## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in metadata.items()]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _git_commit() -> str:
    """HEAD, marked when tracked files differ from it (the previous results files do not count:
    a run overwrites them)."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git(
            "status", "--porcelain", "--untracked-files=no", "--",
            ".", ":!bench/results.json", ":!bench/results.md",
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (uncommitted changes)" if dirty else commit


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=10
    )
    return completed.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
