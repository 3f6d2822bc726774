"""The OpenAPI document (``/openapi.json``): FastAPI's own, made to say what the server does.

- Every error response is a problem document (``application/problem+json``).
- A parameter is sent or left out, never null: the ``null`` that FastAPI lists beside an
  optional parameter's type is dropped (a client that sent ``null`` would send the text "null").
- Links lead from an answer that names a job to the operations on that job (its ``id``; a
  claim's first job), and from a created user to the operations on that user, so that clients
  and test generators (schemathesis' stateful phase) can follow a job through its lifecycle.
- ``GET /jobs/{id}/progress`` takes no token while progress is public (``security: []``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_MEDIA_TYPE
from api.schemas.base import Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "put", "post", "delete", "patch")
JOB_ITEM = "/api/v1/jobs/{job_id}"
USER_ITEM = "/api/v1/users/{user_id}"
PROGRESS_ITEM = f"{JOB_ITEM}/progress"
#: Where an answer's schema keeps the id that its links pass on.
JOB_IDS = {
    "#/components/schemas/JobOut": "$response.body#/id",
    "#/components/schemas/HeartbeatOut": "$response.body#/id",
    "#/components/schemas/ClaimOut": "$response.body#/items/0/id",
}
USER_IDS = {"#/components/schemas/UserOut": "$response.body#/id"}


def openapi_builder(app: FastAPI, *, public_progress: bool) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: builds the document once, then answers it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes, tags=app.openapi_tags,
            )  # fmt: skip
            _problems(document)
            for _, _, operation in _operations(document):
                for parameter in operation.get("parameters", []):
                    _never_null(parameter["schema"])
            _links(document, "job_id", JOB_ITEM, JOB_IDS)
            _links(document, "user_id", USER_ITEM, USER_IDS)
            if public_progress:
                document["paths"][PROGRESS_ITEM]["get"]["security"] = []
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _problems(document: dict[str, Any]) -> None:
    """Every error response as a problem document, and the Problem schema in the components."""
    problem = Problem.model_json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for _, _, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not str(status).isdigit() or int(status) >= 400:
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}


def _never_null(schema: dict[str, Any]) -> None:
    """An optional parameter's schema without its ``null`` branch (and ``null`` default)."""
    branches = [branch for branch in schema.get("anyOf", ()) if branch != {"type": "null"}]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        schema.update(branches[0])
    if "default" in schema and schema["default"] is None:
        del schema["default"]


def _links(document: dict[str, Any], parameter: str, prefix: str, ids: dict[str, str]) -> None:
    """Links from every 2xx answer that names a resource (``ids``: where, by schema) to every
    operation on the resource's own path (``prefix``), passing the id as ``parameter``."""
    targets = {
        "".join(operation["summary"].split()): operation["operationId"]
        for path, _, operation in _operations(document)
        if path == prefix or path.startswith(prefix + "/")
    }
    for _, _, operation in _operations(document):
        for status, response in operation["responses"].items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            source = ids.get(ref.get("$ref", ""))
            if source is None or not str(status).startswith("2"):
                continue
            response["links"] = {
                name: {"operationId": target, "parameters": {parameter: source}}
                for name, target in targets.items()
            }
