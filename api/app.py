"""The FastAPI application: ``create_app(settings)``.

The lifespan builds the shared resources (the ledger, the read model and its runner, the token
and password services) on ``app.state``, never at import time, and closes them on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing

import anyio
from fastapi import FastAPI

from api.docs import install_docs
from api.errors import install_error_handlers
from api.login import AddressThrottle
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware, add_cors
from api.openapi import openapi_builder
from api.passwords import Passwords
from api.routes import auth, commands, events, health, jobs, root, users, workers
from api.settings import Settings
from api.streams import HubOnDemand
from api.tokens import Tokens
from domain.ledger import JobLedger
from projections.lag import LagProbe
from projections.readmodel import Commands, open_read_model

logger = logging.getLogger("api")

#: Threads for claims, apart from the pool commands and sign-ins use: a claim may wait up to
#: 30 s for a job, and long-polling workers must not starve everyone else.
CLAIM_THREADS = 100
#: Routers in the order a request is matched against them: the busiest first.
ROUTING_ORDER = (jobs, commands, workers, events, auth, users, health)
#: Routers (their tags) in the order the API documentation shows them.
DOCUMENTED_ORDER = (auth, users, jobs, commands, workers, events, health)

DESCRIPTION = """An event-sourced job ledger. Every change to a job is an immutable event.

Sign in with **Authorize** (the OAuth2 password form: your email and password). Errors are RFC
9457 problem details. Roles: `admin` (everything), `member` (creates jobs; sees and cancels only
its own), `worker` (reads every job and drives its lifecycle).
"""


def create_app(settings: Settings, passwords: Passwords | None = None) -> FastAPI:
    """Builds the API; the ledger and the read model open when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = JobLedger(env=settings.store.ledger_env())
        try:
            with (
                open_read_model(ledger, settings.store) as read_model,
                closing(HubOnDemand(ledger, read_model)) as stream_hub,
            ):
                app.state.ledger = ledger
                app.state.read_model = read_model
                app.state.commands = Commands(read_model, settings.read_your_writes_timeout)
                app.state.lag_probe = LagProbe(ledger, read_model)
                app.state.claim_limiter = anyio.CapacityLimiter(CLAIM_THREADS)
                app.state.stream_hub = stream_hub
                logger.info("jobledger API ready on %s", settings.store.describe())
                yield
        finally:
            ledger.close()

    app = FastAPI(
        title="jobledger", version="1.0.0", description=DESCRIPTION, lifespan=lifespan,
        openapi_tags=[{"name": module.router.tags[0]} for module in DOCUMENTED_ORDER],
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.tokens = Tokens(settings.jwt_secret, settings.token_ttl_seconds)
    app.state.passwords = passwords or Passwords()
    app.state.address_throttle = AddressThrottle()
    for module in ROUTING_ORDER:
        app.include_router(module.router)
    app.include_router(root.router)
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    add_cors(app, settings.cors_origins)
    app.openapi = openapi_builder(  # type: ignore[method-assign]
        app, public_progress=settings.public_progress
    )
    # Building the schema also builds every route's dependencies now, in one thread: FastAPI
    # otherwise builds them at the first requests, where concurrent builds race on the
    # process-wide warning filters (warnings.catch_warnings is not thread-safe).
    app.openapi()
    return app


def create_app_from_env() -> FastAPI:
    """The app with settings from the environment (``jobledger serve`` and uvicorn's factory)."""
    return create_app(Settings.from_env())
