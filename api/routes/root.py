"""``/``: where a newcomer who opens the server's address should go next."""

from __future__ import annotations

from fastapi import APIRouter

from api.docs import DOCS_URL, REDOC_URL
from api.routing import CheckedRoute

router = APIRouter(tags=["root"], route_class=CheckedRoute)

HEALTH_URL = "/api/health"


@router.get("/", include_in_schema=False)
def root() -> dict[str, str]:
    """Public: points at the API documentation and the health check instead of a bare 404.

    Left out of the OpenAPI document, like ``/docs`` and ``/redoc``: it is a signpost for people,
    not part of the API that clients program against.
    """
    return {
        "name": "jobledger",
        "docs": DOCS_URL,
        "redoc": REDOC_URL,
        "openapi": "/openapi.json",
        "health": HEALTH_URL,
    }
