"""Sign-in sessions of people on the pages (issue 12): server-side rows that expire, a CSRF
token per session, sign-in rate-limited per account and per client address (counted in the
database, so it holds across API processes). Real time throughout: these are security
limits, not business deadlines. 152-ФЗ ст.19: access to personal data is limited to those
who need it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from engine.errors import EngineError
from engine.infra import audit
from engine.staff import passwords
from models.staff import SigninAttempt, StaffRole, StaffSession, StaffUser
from models.types import utcnow

SESSION_TTL = timedelta(hours=8)  # a working day at most, then sign in again
IDLE_TTL = timedelta(minutes=30)  # unused this long: ended
ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_FAILED_PER_ACCOUNT = 5
MAX_FAILED_PER_CLIENT = 20


class SigninRefused(EngineError):
    """Wrong account or password (the message never tells which)."""


class TooManyAttempts(EngineError):
    """Too many failed sign-ins from this account or client address lately."""


@dataclass(frozen=True)
class SignedIn:
    user: StaffUser
    token: str  # the cookie's value (the table keeps its SHA-256)
    csrf_token: str


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _failures(session: Session, since: datetime, *, account: str | None = None,
              client: str | None = None) -> int:
    q = select(func.count()).select_from(SigninAttempt).where(
        SigninAttempt.at > since, col(SigninAttempt.ok).is_(False))
    if account is not None:
        q = q.where(SigninAttempt.account == account)
    if client is not None:
        q = q.where(SigninAttempt.client == client)
    return int(session.exec(q).one())


def sign_in(session: Session, *, account: str, password: str, client: str,
            now: datetime | None = None) -> SignedIn:
    """Check the password and open a session; every attempt is counted (the caller
    commits, also on refusal). Refused: an unknown, inactive or password-less account, a
    wrong password (``SigninRefused``), or more than 5 failures of the account or 20 of the
    client address in 15 minutes (``TooManyAttempts``, the password is not even checked)."""
    at = now or utcnow()
    account = account.strip().lower()[:80]
    client = client[:64]
    since = at - ATTEMPT_WINDOW
    if (_failures(session, since, account=account) >= MAX_FAILED_PER_ACCOUNT
            or _failures(session, since, client=client) >= MAX_FAILED_PER_CLIENT):
        session.add(SigninAttempt(account=account, client=client, at=at, ok=False))
        raise TooManyAttempts("account: too many failed sign-ins; try again in 15 minutes")
    user = session.get(StaffUser, account)
    ok = passwords.verify(user.password_hash if user else None, password)
    usable = ok and user is not None and user.active and user.token_revoked_at is None
    session.add(SigninAttempt(account=account, client=client, at=at, ok=usable))
    if not usable or user is None:
        raise SigninRefused("account: wrong account or password")
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.add(user)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(StaffSession(id_sha256=_sha(token), staff_id=user.id, csrf_token=csrf,
                             created_at=at, last_seen_at=at, expires_at=at + SESSION_TTL))
    audit.record(session, at=at, actor=f"staff:{user.id}", entity="staff", entity_id=user.id,
                 action="signed_in")
    return SignedIn(user=user, token=token, csrf_token=csrf)


def session_user(session: Session, token: str, *,
                 now: datetime | None = None) -> tuple[StaffUser, StaffSession] | None:
    """The user and session of a cookie's token while it lasts (neither ended, expired nor
    idle; the user still active), or None. Touches ``last_seen_at`` (the caller commits)."""
    at = now or utcnow()
    row = session.get(StaffSession, _sha(token))
    if row is None or row.ended_at is not None or row.expires_at <= at \
            or row.last_seen_at + IDLE_TTL <= at:
        return None
    user = session.get(StaffUser, row.staff_id)
    if user is None or not user.active or user.token_revoked_at is not None:
        return None
    if user.role is StaffRole.agency and user.agency_id is None:
        return None
    if at - row.last_seen_at > timedelta(minutes=1):
        row.last_seen_at = at
        session.add(row)
    return user, row


def sign_out(session: Session, token: str, *, now: datetime | None = None) -> None:
    at = now or utcnow()
    row = session.get(StaffSession, _sha(token))
    if row is None or row.ended_at is not None:
        return
    row.ended_at = at
    session.add(row)
    audit.record(session, at=at, actor=f"staff:{row.staff_id}", entity="staff",
                 entity_id=row.staff_id, action="signed_out")


def end_sessions_of(session: Session, staff_id: str, *, now: datetime | None = None) -> int:
    """End every open session of the user (password change, revocation); how many."""
    result = session.execute(
        update(StaffSession)
        .where(col(StaffSession.staff_id) == staff_id, col(StaffSession.ended_at).is_(None))
        .values(ended_at=now or utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
