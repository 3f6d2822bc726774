"""Fixtures for the read model: views and runners on the current backend's store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.ledger import JobLedger
from projections import JobSummaryView, ProjectionRunner, open_view
from stores import Store

MakeView = Callable[..., JobSummaryView[Any]]
MakeRunner = Callable[..., ProjectionRunner]


@pytest.fixture
def make_view(store_url: str) -> Iterator[MakeView]:
    """Opens views of the store (several views of one store act like several processes)."""
    opened: list[JobSummaryView[Any]] = []

    def make() -> JobSummaryView[Any]:
        view = open_view(Store.from_url(store_url))
        opened.append(view)
        return view

    yield make
    for view in opened:
        view.close()


@pytest.fixture
def view(make_view: MakeView) -> JobSummaryView[Any]:
    return make_view()


@pytest.fixture
def make_runner(ledger: JobLedger, view: JobSummaryView[Any]) -> Iterator[MakeRunner]:
    """Starts runners (stopped after the test); defaults to the ``ledger`` and ``view`` fixtures."""
    started: list[ProjectionRunner] = []

    def make(
        on: JobLedger | None = None, into: JobSummaryView[Any] | None = None, **options: Any
    ) -> ProjectionRunner:
        options.setdefault("standby_interval", 0.05)
        options.setdefault("min_backoff", 0.01)
        runner = ProjectionRunner(on or ledger, into or view, **options)
        started.append(runner.start())
        return runner

    yield make
    for runner in started:
        runner.stop()


@pytest.fixture
def runner(make_runner: MakeRunner) -> ProjectionRunner:
    return make_runner()
