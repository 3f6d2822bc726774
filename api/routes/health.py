"""``/api/health``: is the store reachable, and how far behind is the read model."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LagProbeDep, SettingsDep
from api.errors import problem_responses
from api.routing import CheckedRoute
from api.schemas.health import Health, ProjectionHealth

router = APIRouter(tags=["health"], route_class=CheckedRoute)


@router.get("/api/health", response_model=Health, responses=problem_responses(503))
def health(probe: LagProbeDep, settings: SettingsDep) -> Health:
    """Answers 200 when the store answers within 3 s (503 otherwise), with the read model's lag."""
    now = probe.positions()
    return Health(
        status="ok",
        store=settings.store.kind,
        projection=ProjectionHealth(
            position=now.position, head=now.head, lag=max(0, now.head - now.position)
        ),
    )
