"""The health body."""

from __future__ import annotations

from typing import Literal

from api.schemas.base import ResponseModel


class ProjectionHealth(ResponseModel):
    """How far the read model is behind the event log."""

    position: int
    head: int
    lag: int


class Health(ResponseModel):
    """The service is up and its store answers."""

    status: Literal["ok"]
    store: Literal["memory", "sqlite", "postgresql"]
    projection: ProjectionHealth
