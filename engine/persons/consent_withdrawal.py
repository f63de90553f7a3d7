"""Withdrawing consent to personal-data processing (152-ФЗ art. 9 ч.2; 004 п.11), in the
caller's transaction.

The withdrawal is the next version of each consent in effect (nothing overwritten: art. 9
ч.3). It stops processing for the purposes the consent covered: each active route of the
person is **suspended** — its open requests are withdrawn and their agencies get a cancel
notice (``engine.routes.transitions.withdraw_request``), every pending timer stops
(``engine.escalations.timers.cancel_pending``), open escalations are closed, the route's status is
``suspended`` — and from then on no request carrying the person's data is prepared for it
(``engine.routes.transitions`` refuses a suspended route). The applications are kept blocked and the
contacts are marked for destruction within 30 days (art. 21 ч.5; ``WITHDRAWAL_POLICY``,
docs/person-file.md). Everything is audited, with identifiers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.infra.locks import lock_step
from engine.routes.resume import record_remaining
from engine.routes.transitions import EngineConfig, mirror_later, withdraw_request
from models.agencies import AgencyRequest
from models.consent import ConsentRecord, withdraw
from models.person_file import ApplicationRecord, ConsentVersion, PersonDetail
from models.persons import Person
from models.routes import Route, RouteStatus, Step
from models.timers import EscalationStatus

REASON = "согласие на обработку персональных данных отозвано (152-ФЗ ст. 9 ч. 2)"
DESTROY_WITHIN = timedelta(days=30)
"""152-ФЗ art. 21 ч.5: data with no other basis are destroyed within 30 days."""


class NothingToWithdraw(EngineError):
    """The person has no consent in effect (none given, or all withdrawn already)."""


@dataclass
class Withdrawal:
    person_id: str
    consents: list[str] = field(default_factory=list)  # "<consent_id>/v<version>"
    routes_suspended: list[str] = field(default_factory=list)
    cancel_notices: list[str] = field(default_factory=list)
    timers_cancelled: int = 0
    applications_blocked: int = 0


def _in_effect(session: Session, person_id: str,
               consent_id: str | None) -> list[ConsentVersion]:
    """The latest version of each of the person's consents, unless withdrawn."""
    rows = session.exec(select(ConsentVersion).where(ConsentVersion.person_id == person_id)
                        .order_by(col(ConsentVersion.consent_id), col(ConsentVersion.version)))
    latest: dict[str, ConsentVersion] = {}
    for r in rows:
        latest[r.consent_id] = r
    return [r for r in latest.values() if r.withdrawn_at is None
            and (consent_id is None or r.consent_id == consent_id)]


def suspend_route(session: Session, cfg: EngineConfig, route: Route, *, now: datetime,
                  actor: str, reason: str = REASON) -> tuple[list[str], int]:
    """Suspend one active route: withdraw each open request (a cancel notice to its agency),
    stop every pending timer of every step, close open escalations, status ``suspended``.
    Returns (cancel notice ids, timers cancelled)."""
    notices: list[str] = []
    cancelled = 0
    with session.no_autoflush:
        step_ids = list(session.exec(select(Step.id).where(Step.route_id == route.id)
                                     .order_by(col(Step.seq))))
    for step_id in step_ids:
        step = lock_step(session, step_id)
        assert step is not None
        # what the step had left, so that a resume continues with it (engine.route_resume)
        record_remaining(session, cfg, route, step, now=now, reason=reason)
        if step.current_request_id and not step.status.terminal:
            req = session.get(AgencyRequest, step.current_request_id)
            if req is not None:
                notice = withdraw_request(session, req, now=now, actor=actor, reason=reason)
                if notice is not None:
                    notices.append(notice.id)
        cancelled += timers.cancel_pending(session, step.id, reason=reason, now=now,
                                           actor=actor)
        ladder.resolve_open(session, step, now=now, actor=actor, resolution=reason,
                            action="closed_route_suspended", status=EscalationStatus.closed,
                            reason=reason)
    before = route.status.value
    route.status = RouteStatus.suspended
    session.add(route)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="suspended", before={"status": before},
                 after={"status": RouteStatus.suspended.value, "cancel_notices": len(notices),
                        "timers_cancelled": cancelled}, reason=reason)
    mirror_later(session, cfg, route.id)
    return notices, cancelled


def withdraw_consent(session: Session, cfg: EngineConfig, *, person_id: str, now: datetime,
                     actor: str, consent_id: str | None = None) -> Withdrawal:
    """Withdraw the person's consent (``consent_id``, or every one in effect) at ``now``.

    152-ФЗ art. 9 ч.2: consent may be withdrawn at any time; 004 п.11: the person may refuse
    accompaniment. Appends the withdrawal versions, suspends the person's active routes,
    blocks the applications (art. 3 п.7, art. 21 ч.5) and sets the contacts' destruction
    day (art. 21 ч.5: 30 days). NothingToWithdraw if no consent is in effect.
    """
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError(f"person_id: no person {person_id!r}")
    rows = _in_effect(session, person_id, consent_id)
    if not rows:
        raise NothingToWithdraw("consent: no consent in effect to withdraw")
    out = Withdrawal(person_id=person_id)
    for row in rows:
        new = withdraw(ConsentRecord.model_validate(row.record), now)
        session.add(ConsentVersion(
            consent_id=new.consent_id, version=new.version, person_id=person_id,
            record=new.model_dump(mode="json"), given_at=new.given_at,
            expires_at=new.expires_at, withdrawn_at=new.withdrawn_at, recorded_by=actor))
        out.consents.append(f"{new.consent_id}/v{new.version}")
        audit.record(session, at=now, actor=actor, entity="consent", entity_id=new.consent_id,
                     action="withdrawn", after={"person_id": person_id, "version": new.version},
                     reason="152-ФЗ art. 9 ч.2")
    session.flush()
    routes = list(session.exec(select(Route).where(Route.person_id == person_id,
                                                   Route.status == RouteStatus.active)
                               .order_by(col(Route.id))))
    for route in routes:
        notices, cancelled = suspend_route(session, cfg, route, now=now, actor=actor)
        out.routes_suspended.append(route.id)
        out.cancel_notices += notices
        out.timers_cancelled += cancelled
    apps = list(session.exec(select(ApplicationRecord).where(
        ApplicationRecord.person_id == person_id, col(ApplicationRecord.blocked_at).is_(None))))
    for app in apps:
        app.blocked_at = now
        session.add(app)
    out.applications_blocked = len(apps)
    detail = session.get(PersonDetail, person_id)
    if detail is not None:
        detail.processing_stopped_at = now
        detail.destroy_by = (now + DESTROY_WITHIN).date()
        session.add(detail)
    audit.record(session, at=now, actor=actor, entity="person", entity_id=person_id,
                 action="consent_withdrawn",
                 after={"consents": out.consents, "routes_suspended": out.routes_suspended,
                        "cancel_notices": len(out.cancel_notices),
                        "timers_cancelled": out.timers_cancelled,
                        "applications_blocked": out.applications_blocked,
                        "contacts_destroy_by": detail.destroy_by if detail else None},
                 reason="152-ФЗ art. 9 ч.2, art. 21 ч.5")
    session.flush()
    return out


def processing_stopped(session: Session, person_id: str) -> bool:
    """Whether the person has consents on file and none of them is in effect any more
    (withdrawn): their data are not processed further (152-ФЗ art. 9 ч.2)."""
    has_any = session.exec(select(ConsentVersion.id).where(
        ConsentVersion.person_id == person_id).limit(1)).first() is not None
    return has_any and not _in_effect(session, person_id, None)
