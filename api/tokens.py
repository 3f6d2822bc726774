"""Access tokens: JWTs signed with HS256 (pinned), issued and decoded in one place."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from uuid import UUID

import jwt

from api.errors import NotAuthenticatedError
from domain.user import Role, User

ALGORITHM = "HS256"
ISSUER = "jobledger"
AUDIENCE = "jobledger-api"
LEEWAY_SECONDS = 10
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud", "jti")


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says: who, with which role, until when."""

    user_id: UUID
    role: Role
    token_id: str
    expires_at: int


class Tokens:
    """Issues and checks the API's bearer tokens."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User, ttl_seconds: int | None = None, now: float | None = None) -> str:
        """Returns a signed token for ``user``, valid for ``ttl_seconds`` (default: the setting)."""
        issued_at = int(time.time() if now is None else now)
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "iat": issued_at,
            "exp": issued_at + (self.ttl_seconds if ttl_seconds is None else ttl_seconds),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Claims:
        """Checks signature, algorithm and every required claim; raises NotAuthenticatedError."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            return Claims(
                user_id=UUID(str(claims["sub"])),
                role=Role(claims["role"]),
                token_id=str(claims["jti"]),
                expires_at=int(claims["exp"]),
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticatedError("The token has expired.", token_given=True) from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise NotAuthenticatedError("The token is invalid.", token_given=True) from None
