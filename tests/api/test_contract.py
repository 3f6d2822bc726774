"""The API against its own OpenAPI document, with schemathesis: valid and invalid requests, as an
admin. No answer may be a 5xx, and every answer must match the document (status, media type,
headers, body). Half the cases aim at a real job instead of a random id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.passwords import Passwords
from tests.api.client import BASE_URL, AppClient
from tests.api.conftest import People, make_settings

SCHEMA = schemathesis.openapi.from_dict(
    create_app(make_settings("memory://", Path("unused")), Passwords()).openapi()
)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 25


class Target:
    """A running app with users, and the admin's headers to call it with."""

    def __init__(self, client: AppClient, people: People) -> None:
        self.client = client
        self.people = people
        self.headers = people.admin.headers

    def real_job(self) -> str:
        ledger = self.people.ledger
        job = ledger.create_job(job_type="import", total_items=5, actor=self.people.member.id)
        return str(job.job.id)

    def send(self, case: Any) -> Any:
        _without_waits(case)
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=self.headers)
        data = kwargs.pop("data", None)
        if isinstance(data, bytes | str):
            kwargs["content"] = data
        elif data is not None:
            kwargs["data"] = data
        for unused in ("cookies", "auth"):
            kwargs.pop(unused, None)
        return self.client.request(**kwargs)


def _without_waits(case: Any) -> None:
    """A valid claim's wait made 0: the document allows 30 s a case, and a wait is only time."""
    wait = case.body.get("waitSeconds") if isinstance(case.body, dict) else None
    if case.path.endswith("/claim") and type(wait) in (int, float) and 0 < wait <= 30:
        case.body["waitSeconds"] = 0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, password_hash: str) -> Iterator[Target]:
    settings_ = make_settings("memory://", tmp_path_factory.mktemp("contract"))
    with AppClient(create_app(settings_, Passwords())) as client:
        # Claimed jobs' leases would pass mid-run, and the sweeper's retry backoff draws from the
        # global random state while hypothesis draws a case, which it reports as flaky.
        client.app.state.read_model.sweeper.stop()
        yield Target(client, People(client.app, password_hash))


def _has_constraints(operation: Any) -> bool:
    """Whether invalid requests exist for the operation (a body, or a constrained parameter)."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(
        p["in"] != "path" or "format" in p.get("schema", {}) for p in raw.get("parameters", [])
    )


CASES = [
    *(pytest.param(op, GenerationMode.POSITIVE, id=f"{op.label} valid") for op in OPERATIONS),
    *(
        pytest.param(op, GenerationMode.NEGATIVE, id=f"{op.label} invalid")
        for op in OPERATIONS
        if _has_constraints(op)
    ),
]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_the_api_keeps_its_contract(target: Target, operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any, real: bool) -> None:
        if real and "job_id" in (case.path_parameters or {}):
            case.path_parameters["job_id"] = target.real_job()
        response = target.send(case)
        case.validate_response(response, checks=CHECKS, headers=target.headers)

    check()
