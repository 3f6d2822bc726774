"""Output for operators: plain text, help without markup, and progress bars only where a person
watches (a terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def help_text(docstring_line: str) -> str:
    """A docstring's line as help text: without reStructuredText's double backticks."""
    return docstring_line.replace("``", "")


def plain_console(*, stderr: bool = False) -> Console:
    """Plain output: no highlighting of digits and dates."""
    return Console(highlight=False, stderr=stderr)


def progress_bar(console: Console, label: str, unit: str) -> Progress:
    """A progress bar that fits 80 columns, shown only on a terminal (not in pipes and logs)."""
    return Progress(
        TextColumn(f"{label:<8}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


class _RateColumn(ProgressColumn):
    """Items per second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"- {self.unit}/s" if speed is None else f"{speed:,.0f} {self.unit}/s")
