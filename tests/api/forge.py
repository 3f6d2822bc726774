"""Tokens for the negative cases: expired, badly signed, ``alg: none``, wrong audience or issuer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt

from api.tokens import AUDIENCE, ISSUER
from tests.api.conftest import SECRET, Person

OTHER_SECRET = b"another secret, also long enough for HS256 keys!"


def claims_of(person: Person, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": person.id,
        "role": person.user.role.value,
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(claims: dict[str, Any], key: bytes = SECRET) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def unsigned(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def bad_tokens(person: Person) -> dict[str, str]:
    """One invalid token of each kind, all for ``person``."""
    now = int(time.time())
    return {
        "expired": signed(claims_of(person, iat=now - 7200, exp=now - 3600)),
        "bad signature": signed(claims_of(person), OTHER_SECRET),
        "alg none": unsigned(claims_of(person)),
        "wrong aud": signed(claims_of(person, aud="someone-else")),
        "wrong iss": signed(claims_of(person, iss="someone-else")),
    }
