"""Schemathesis hooks of the contract test (``SCHEMATHESIS_HOOKS``): a claim's wait made 0.

The document allows a claim to wait up to 30 s for a job to be due, and a claim of a type that
no job has waits all of it; here that is only time (tests/projections/test_claim_service.py
covers waiting). The wait is made 0 only where it was valid, so a case stays as valid as drawn.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CLAIM_PATH = "/api/v1/jobs/claim"
MAX_WAIT_SECONDS = 30


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body if isinstance(case.body, dict) else {}
    wait = body.get("waitSeconds")
    if case.path == CLAIM_PATH and type(wait) in (int, float) and 0 < wait <= MAX_WAIT_SECONDS:
        body["waitSeconds"] = 0
