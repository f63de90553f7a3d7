"""Bearer-token authentication of staff (StaffUser.token_sha256) and role checks.

Supervisors act for the Ministry's control of interagency interaction (298-п Порядок п.13,
Регламент п.17); coordinators for the rehabilitation organisation (363н п.10б).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.deps import EngineDep
from engine.infra.settings import PLACEHOLDER, Settings
from engine.staff.accounts import staff_by_token
from models.staff import StaffRole, StaffUser

_bearer = HTTPBearer(auto_error=False)


def _is_builtin_admin(request: Request, token: str) -> bool:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    if settings is None:  # an app without settings has no built-in administrator
        return False
    admin = settings.admin_token.get_secret_value()
    return admin != PLACEHOLDER and hmac.compare_digest(token.encode(), admin.encode())


def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    engine: EngineDep,
) -> StaffUser:
    """The active staff user whose token is presented as ``Authorization: Bearer ...``.

    The built-in administrator (``REHAB_ADMIN_TOKEN``) is an operator, not a person: it
    controls the installation (the business clock where clock control is on) and is refused
    here with 403 — routes and persons are handled by staff users, whose actions are audited
    under their own names (``rehab staff add --role admin`` for an administrator)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "authorization: a staff bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    if _is_builtin_admin(request, credentials.credentials):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "authorization: the built-in administrator token "
                            "(REHAB_ADMIN_TOKEN) controls the installation only; routes and "
                            "escalations need a staff user's token (rehab staff add)")
    with Session(engine, expire_on_commit=False) as s:
        user = staff_by_token(s, credentials.credentials)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "authorization: unknown, inactive, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentStaff = Annotated[StaffUser, Depends(current_staff)]


def require_role(*roles: StaffRole) -> Callable[[StaffUser], StaffUser]:
    """A dependency admitting only staff of ``roles`` (403 otherwise)."""

    def check(user: CurrentStaff) -> StaffUser:
        if user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role: needs {' or '.join(r.value for r in roles)}, not {user.role.value}")
        return user

    return check


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    engine: EngineDep,
) -> str:
    """Admit the built-in administrator (``REHAB_ADMIN_TOKEN``, never its placeholder) or an
    active staff user with the admin role; returns the actor for the audit."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "authorization: the admin bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    given = credentials.credentials
    if _is_builtin_admin(request, given):
        return "admin:builtin"
    with Session(engine, expire_on_commit=False) as s:
        user = staff_by_token(s, given)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "authorization: unknown, inactive, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    if user.role is not StaffRole.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"role: needs admin, not {user.role.value}")
    return f"staff:{user.id}"
