"""Credentials of the admin API: bearer tokens with a role, separate from the model API's keys."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from gateway.access.config import AccessConfig
from gateway.errors import AuthenticationFailed, PermissionDenied

Role = Literal["admin", "viewer"]
#: Methods a viewer may use; everything else changes state and needs the admin role.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AdminTokens:
    """Checks admin bearer tokens. Only their hashes are kept; comparison is constant-time."""

    def __init__(self, config: AccessConfig) -> None:
        self._tokens: list[tuple[bytes, Role]] = []
        for token, role in config.admin_tokens.items():
            hashed = token.startswith("sha256:")
            self._tokens.append((bytes.fromhex(token[7:]) if hashed else _digest(token), role))
        if config.master_key is not None:
            self._tokens.append((_digest(config.master_key.get_secret_value()), "admin"))

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def role_of(self, authorization: str | None) -> Role:
        """The role of the token in an ``Authorization: Bearer`` header; 401 when there is none."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("admin API: send the header 'Authorization: Bearer <admin token>'")
        digest = _digest(token.strip())
        role: Role | None = None
        for known, known_role in self._tokens:  # no early exit: the time taken does not depend on a match
            if hmac.compare_digest(digest, known) and role is None:
                role = known_role
        if role is None:
            raise AuthenticationFailed("admin API: unknown admin token", code="invalid_admin_token")
        return role

    def check(self, authorization: str | None, method: str) -> Role:
        """The caller's role if it may use ``method``; raises 401 or 403 otherwise."""
        role = self.role_of(authorization)
        if role != "admin" and method.upper() not in READ_METHODS:
            raise PermissionDenied(
                f"admin API: the {role} role is read-only; {method.upper()} needs the admin role",
                code="insufficient_role",
            )
        return role
