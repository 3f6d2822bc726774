"""The usual curl mistakes answer problem details that say what to do instead."""

from __future__ import annotations

import pytest

from tests.api.client import AppClient
from tests.api.conftest import PASSWORD, People, assert_problem
from tests.conftest import MEMORY_ONLY

pytestmark = MEMORY_ONLY

JOB = b'{"type": "import", "totalItems": 3}'


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain"],
    ids=["no content type", "curl -d default", "text/plain"],
)
def test_json_without_its_content_type_says_which_to_send(
    client: AppClient, people: People, content_type: str | None
) -> None:
    headers = {**people.member.headers}
    if content_type is not None:
        headers["Content-Type"] = content_type

    problem = assert_problem(client.post("/api/v1/jobs", content=JOB, headers=headers), 422)

    assert "send Content-Type: application/json" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body"]


def test_malformed_json_gives_the_line_the_column_and_what_was_expected(
    client: AppClient, people: People
) -> None:
    body = b'{\n  "type": "import",\n  "totalItems": \n}'
    headers = {**people.member.headers, "Content-Type": "application/json"}

    problem = assert_problem(client.post("/api/v1/jobs", content=body, headers=headers), 422)

    assert "line 4, column 1" in problem["detail"]
    assert "Expecting value" in problem["detail"]
    assert problem["errors"][0]["type"] == "json_invalid"


def test_json_sent_to_the_token_endpoint_says_it_takes_a_form(
    client: AppClient, people: People
) -> None:
    sent = {"username": people.member.email, "password": PASSWORD}

    problem = assert_problem(client.post("/api/v1/auth/token", json=sent), 422)

    assert "this endpoint takes a form: username=...&password=..." in problem["detail"]
    form = client.post("/api/v1/auth/token", data=sent)
    assert form.status_code == 200, form.text


def test_an_unknown_field_close_to_a_real_one_is_named(
    client: AppClient, people: People
) -> None:
    for near_miss in ("totalitems", "total_items", "totalItem"):
        body = {"type": "import", near_miss: 3}

        problem = assert_problem(
            client.post("/api/v1/jobs", json=body, headers=people.member.headers), 422
        )

        assert "did you mean totalItems?" in problem["detail"], near_miss
        assert problem["errors"][0]["type"] == "extra_forbidden"
        assert "did you mean totalItems?" in problem["errors"][0]["msg"]
    unlike = {"type": "import", "colour": "blue"}
    problem = assert_problem(
        client.post("/api/v1/jobs", json=unlike, headers=people.member.headers), 422
    )
    assert "did you mean" not in problem["detail"]


def test_the_root_points_at_the_docs_and_the_health_check(client: AppClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs" and body["health"] == "/api/health"
    assert "/" not in client.app.openapi()["paths"]
