"""A new consent after a withdrawal (152-ФЗ art. 9 ч.1), in the caller's transaction.

The new consent is a consent of its own (a new ``consent_id``: a withdrawn one has no next
version, ``models.consent.check_history``) or the next version of one in effect. Recorded,
it lets processing go on for its purposes: the person's contacts are no longer due for
destruction (``destroy_by`` cleared — unless they were destroyed already), the applications
of those purposes are unblocked, and the person's suspended routes of those purposes become
**resumable** — resuming each is the coordinator's act on the person's request
(``engine.route_resume.resume_route``; 004 п.11, п.12), never a side effect of the consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.persons.applications import ApplicationInvalid, _store_consent
from engine.persons.consent_withdrawal import processing_stopped
from engine.routes.resume import consent_in_effect
from models.consent import ConsentPurpose, ConsentRecord
from models.input_validation import FieldError, check
from models.person_file import ApplicationRecord, PersonDetail
from models.persons import Person
from models.routes import Route, RouteStatus


class ConsentInvalid(EngineError):
    """The consent record has invalid fields (all of them, named ``consent.<field>``)."""

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        super().__init__("consent: invalid fields: " + ", ".join(sorted({e.field
                                                                          for e in errors})))
        self.errors = errors


@dataclass
class ConsentGiven:
    person_id: str
    consent: str  # "<consent_id>/v<version>"
    resumable_routes: list[str] = field(default_factory=list)
    applications_unblocked: int = 0
    processing_stopped: bool = False


def _invalid(rule: str, field_: str, message_ru: str) -> ConsentInvalid:
    return ConsentInvalid((FieldError(field=f"consent.{field_}", rule=rule,
                                      message_ru=message_ru),))


def give_consent(session: Session, *, person_id: str, raw: object, now: datetime,
                 actor: str) -> ConsentGiven:
    """Record a consent version for the person (152-ФЗ art. 9 ч.1, ч.3: versions, never
    overwritten). Every bad field raised at once (``ConsentInvalid``), nothing stored; a
    consent of another person's SNILS, one given after ``now``, a withdrawal (use the
    withdrawal) or one already expired is refused naming the field."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError(f"person_id: no person {person_id!r}")
    checked = check(ConsentRecord, raw)
    if checked.value is None:
        raise ConsentInvalid(tuple(e.model_copy(update={"field": f"consent.{e.field}"})
                                   for e in checked.errors))
    record = checked.value
    if record.subject_snils != person.snils:
        raise _invalid("consent_of_another_person", "subject_snils",
                       "Согласие дано на обработку данных другого лица")
    if record.given_at > now:
        raise _invalid("not_in_future", "given_at",
                       "Момент дачи согласия не может быть позже текущего момента")
    if record.withdrawn_at is not None:
        raise _invalid("not_a_withdrawal", "withdrawn_at",
                       "Отзыв согласия оформляется отдельно, не как новое согласие")
    if record.expires_at is not None and record.expires_at <= now:
        raise _invalid("expired", "expires_at", "Срок действия согласия уже истёк")
    try:
        _store_consent(session, person, record, now=now, actor=actor)
    except ApplicationInvalid as exc:
        raise ConsentInvalid(exc.errors) from None
    out = ConsentGiven(person_id=person.id, consent=f"{record.consent_id}/v{record.version}")
    covered = {p for p in ConsentPurpose if consent_in_effect(session, person.id, p, now)}
    detail = session.get(PersonDetail, person.id)
    out.processing_stopped = processing_stopped(session, person.id)
    if detail is not None and not out.processing_stopped and \
            detail.processing_stopped_at is not None:
        detail.processing_stopped_at = None
        detail.destroy_by = None
        session.add(detail)
    apps = list(session.exec(select(ApplicationRecord).where(
        ApplicationRecord.person_id == person.id,
        col(ApplicationRecord.blocked_at).is_not(None))))
    for app in apps:
        if app.kind in {p.value for p in covered}:
            app.blocked_at = None
            session.add(app)
            out.applications_unblocked += 1
    routes = session.exec(select(Route).where(Route.person_id == person.id,
                                              Route.status == RouteStatus.suspended)
                          .order_by(col(Route.id)))
    out.resumable_routes = [r.id for r in routes if r.template in {p.value for p in covered}]
    audit.record(session, at=now, actor=actor, entity="person", entity_id=person.id,
                 action="consent_given",
                 after={"consent": out.consent, "purposes": sorted(p.value for p in covered),
                        "resumable_routes": out.resumable_routes,
                        "applications_unblocked": out.applications_unblocked},
                 reason="152-ФЗ art. 9 ч.1")
    session.flush()
    return out
