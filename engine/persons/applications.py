"""Registering an application of the 363н form (issue 10), in the caller's transaction.

One use case, one transaction: the form is validated (every bad field at once, nothing
stored), the person found by SNILS or created (never duplicated), the consent checked
(152-ФЗ art. 9: without a valid one nothing is registered), the eligibility decided on the
person's current ИПРА and stored with the application; an eligible application forms the
route through ``engine.routes.transitions.register_application`` with the application's instant of
registration (001 Порядок п.10: the send deadline counts from it); an ineligible one is
registered with its decision and the person is told why through their preferred channel
(004 п.7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError
from engine.infra import audit
from engine.notifications.outbox import Recipient, queue_notification, staff_recipient
from engine.routes.forming import form_route, spec_for
from engine.routes.transitions import EngineConfig
from models.application import (
    AccompanimentAction,
    ApplicantKind,
    Application,
    ChildIdentifier,
    RequestKind,
    validate_application,
)
from models.basic_application import ApplicationIn, same_name
from models.consent import (
    ConsentHistoryError,
    ConsentProblem,
    ConsentRecord,
    check_history,
    consent_for_application,
    consent_status,
    current_version,
    needed_for,
)
from models.contacts import ContactChannel, PhoneKind
from models.eligibility import Decision, EligibilitySettings, decide
from models.input_validation import FieldError, check
from models.ipra import Ipra, IpraOrderError, latest_ipra
from models.notifications import Channel
from models.person_file import (
    ApplicationRecord,
    ConsentVersion,
    DisabilityRecord,
    IpraRecord,
    PersonDetail,
)
from models.persons import Person
from models.routes import Route
from models.staff import StaffRole, StaffUser
from models.template_files import TemplateSpec
from models.types import new_id

SYSTEM = "system:applications"

ROUTE_TEMPLATES: Mapping[RequestKind, str] = {
    RequestKind.accompaniment: "accompaniment",
    RequestKind.supported_living: "supported_living",
    RequestKind.social_employment: "social_employment",
    RequestKind.early_help: "early_help",
}
"""The route template each kind of application forms (the newest version of its data file,
``models/route_templates``); asking accompaniment to stop forms no route (004 п.11,
п.13 б)."""

IDENTIFIER_ROLE: Mapping[ChildIdentifier, str] = {
    ChildIdentifier.health: "health",
    ChildIdentifier.social: "social_policy",
    ChildIdentifier.education: "education",
}
"""003 п.1: the organisations of health, social protection and education identify the child;
the participant role of the step that asks the identifying organisation (``roles``)."""


def _step_roles(spec: TemplateSpec, app: Application) -> dict[str, str]:
    """The roles taken from the application for the template's steps with ``roles``: the
    organisation that identified the child (early help, 003); none named: the default."""
    who = app.request.identified_by
    if who is None:
        return {}
    return {s.kind: IDENTIFIER_ROLE[who] for s in spec.steps if s.roles}


class ApplicationInvalid(EngineError):
    """The form (or the consent given with it) has invalid fields: all of them."""

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        super().__init__("application: invalid fields: "
                         + ", ".join(sorted({e.field for e in errors})))
        self.errors = errors


class ConsentRefused(EngineError):
    """No valid consent (152-ФЗ art. 9): nothing is registered. ``field``/``rule`` name it."""

    def __init__(self, rule: str, message_ru: str) -> None:
        super().__init__(f"consent: {rule}")
        self.error = FieldError(field="consent", rule=rule, message_ru=message_ru)


class PersonConflict(EngineError):
    """The SNILS is registered for a person with another birth date (never merged silently)."""


@dataclass(frozen=True)
class Registered:
    application: ApplicationRecord
    person: Person
    decision: Decision
    route: Route | None
    person_created: bool
    notified: bool


def region_of(app: Application) -> str:
    """The application's region: its person's actual address, else the registration one."""
    addr = app.person.actual_address or app.person.registration_address
    return addr.region_code


def _check_form(raw: object, consent_raw: object | None, *, now: datetime,
                cfg: EngineConfig) -> tuple[Application, ConsentRecord | None]:
    """Every error of the form and of the consent given with it, at once."""
    checked = validate_application(raw)
    errors = list(checked.errors)
    consent: ConsentRecord | None = None
    if consent_raw is not None:
        c = check(ConsentRecord, consent_raw)
        errors += [e.model_copy(update={"field": f"consent.{e.field}"}) for e in c.errors]
        consent = c.value
    app = checked.value
    if app is not None:
        reg = app.submission.registered_at
        if reg > now:
            errors.append(FieldError(
                field="submission.registered_at", rule="not_in_future",
                message_ru="Момент регистрации не может быть позже текущего момента"))
        region = region_of(app)
        field = ("person.actual_address.region_code" if app.person.actual_address
                 else "person.registration_address.region_code")
        try:
            calendars.get_calendar(region)
        except calendars.CalendarError:
            errors.append(FieldError(
                field=field, rule="region_not_served",
                message_ru="Регион не обслуживается системой: нет производственного календаря"))
        else:
            try:  # the first request's send-by deadline (001 Порядок п.10) must be computable
                calendars.deadline(reg, 1, cfg.sender_region)
            except calendars.CalendarError:
                errors.append(FieldError(
                    field="submission.registered_at", rule="calendar_range",
                    message_ru="Дата регистрации вне периода производственного календаря"))
    if errors:
        raise ApplicationInvalid(tuple(errors))
    assert app is not None
    return app, consent


def find_person(session: Session, snils: str) -> Person | None:
    """The person with this (normalised) SNILS."""
    return session.exec(select(Person).where(Person.snils == snils)).first()


def find_or_create_person(session: Session, *, snils: str, full_name: str, birth_date: Any,
                          region: str, now: datetime, actor: str) -> tuple[Person, bool]:
    """The person by SNILS, created if new (never duplicated: SNILS is unique; of two
    registrations of one new person at once, the loser re-reads the winner's row). Another
    birth date under the same SNILS is a conflict; a new name (marriage) is taken, audited."""
    person = find_person(session, snils)
    if person is None:
        candidate = Person(id=new_id("pn"), full_name=full_name, snils=snils,
                           birth_date=birth_date, region=region)
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
        except IntegrityError:
            person = find_person(session, snils)
            if person is None:
                raise
        else:
            audit.record(session, at=now, actor=actor, entity="person", entity_id=candidate.id,
                         action="created", after={"region": region})
            return candidate, True
    if person.birth_date != birth_date:
        raise PersonConflict("person.birth_date: the SNILS is registered for a person with "
                             "another birth date; check the documents",
                             rule="snils_other_birth_date")
    if person.full_name != full_name:
        person.full_name = full_name
        session.add(person)
        audit.record(session, at=now, actor=actor, entity="person", entity_id=person.id,
                     action="name_changed")
    return person, False


def _refuse(s: Session, person: Person, *, now: datetime, actor: str, action: str,
            detail: str, rule: str) -> PersonConflict:
    """Audit a refused registration against an existing person (who tried, which person —
    identifiers only) in its own transaction, and the conflict to raise (409 in the API)."""
    person_id, region = person.id, person.region
    s.rollback()
    audit.record(s, at=now, actor=actor, entity="person", entity_id=person_id, action=action,
                 after={"region": region})
    s.commit()
    return PersonConflict(detail, rule=rule)


def person_for_basic_application(s: Session, app_in: ApplicationIn, staff: StaffUser, *,
                                 now: datetime, actor: str) -> Person:
    """The person with this SNILS for the coordinator API's application, created if new. The
    same SNILS with another name or birth date is a conflict (PersonConflict), never a silent
    merge. Two registrations of the same new person at once create one person: SNILS is
    unique, the loser re-reads the winner's.

    A person of another region is not this coordinator's to confirm: whatever name and birth
    date are given, the answer is the same conflict (no SNILS-and-name oracle across regions),
    and every such attempt is audited (``registration_refused_other_region``), as is every
    conflict in the coordinator's own region (``registration_conflict``)."""
    person = find_person(s, app_in.snils)
    if person is None:
        candidate = Person(id=new_id("pn"), full_name=app_in.full_name, snils=app_in.snils,
                           birth_date=app_in.birth_date, region=app_in.region,
                           representative=app_in.representative)
        try:
            with s.begin_nested():
                s.add(candidate)
                s.flush()
        except IntegrityError:
            # a concurrent registration created them meanwhile
            person = s.exec(select(Person).where(Person.snils == app_in.snils)).first()
            if person is None:
                raise
        else:
            audit.record(s, at=now, actor=actor, entity="person", entity_id=candidate.id,
                         action="created", after={"region": candidate.region})
            return candidate
    if staff.role is not StaffRole.admin and person.region != staff.region:
        raise _refuse(s, person, now=now, actor=actor,
                      action="registration_refused_other_region",
                      detail="snils: this SNILS belongs to a person of another region; the "
                             "application is registered there (or by an administrator)",
                      rule="snils_other_region")
    if not same_name(person.full_name, app_in.full_name) or \
            person.birth_date != app_in.birth_date:
        raise _refuse(s, person, now=now, actor=actor, action="registration_conflict",
                      detail="snils: already registered for a person with another "
                             "full_name or birth_date; check the data",
                      rule="snils_other_person")
    return person


def consent_history(session: Session, person_id: str) -> list[ConsentVersion]:
    return list(session.exec(select(ConsentVersion).where(ConsentVersion.person_id == person_id)
                             .order_by(col(ConsentVersion.consent_id),
                                       col(ConsentVersion.version))))


def _store_consent(session: Session, person: Person, record: ConsentRecord, *, now: datetime,
                   actor: str) -> None:
    """Append the given consent version (152-ФЗ art. 9 ч.3: versions, never overwritten). A
    version already stored as given is not stored twice; another record under a stored
    version, or a gap, is an error on the consent's fields."""
    rows = [r for r in consent_history(session, person.id) if r.consent_id == record.consent_id]
    others = list(session.exec(select(ConsentVersion.person_id).where(
        ConsentVersion.consent_id == record.consent_id, ConsentVersion.person_id != person.id)))
    if others:
        raise ApplicationInvalid((FieldError(
            field="consent.consent_id", rule="consent_of_another_person",
            message_ru="Согласие с этим номером дано другим лицом"),))
    same = next((r for r in rows if r.version == record.version), None)
    if same is not None:
        if ConsentRecord.model_validate(same.record) != record:
            raise ApplicationInvalid((FieldError(
                field="consent.version", rule="version_exists",
                message_ru="Эта версия согласия уже записана с другим содержанием"),))
        return
    try:
        check_history([*(ConsentRecord.model_validate(r.record) for r in rows), record])
    except ConsentHistoryError:
        raise ApplicationInvalid((FieldError(
            field="consent.version", rule="version_order",
            message_ru="Версии согласия идут по порядку, без пропусков; после отзыва — "
                       "новое согласие с новым номером"),)) from None
    session.add(ConsentVersion(
        consent_id=record.consent_id, version=record.version, person_id=person.id,
        record=record.model_dump(mode="json"), given_at=record.given_at,
        expires_at=record.expires_at, withdrawn_at=record.withdrawn_at, recorded_by=actor))
    session.flush()
    audit.record(session, at=now, actor=actor, entity="consent", entity_id=record.consent_id,
                 action="version_recorded",
                 after={"person_id": person.id, "version": record.version,
                        "purposes": sorted(p.value for p in record.purposes),
                        "withdrawn": record.withdrawn_at is not None})


def ipra_history(session: Session, person_id: str) -> list[IpraRecord]:
    return list(session.exec(select(IpraRecord).where(IpraRecord.person_id == person_id)
                             .order_by(col(IpraRecord.issued_on), col(IpraRecord.id))))


def current_ipra(session: Session, person_id: str) -> tuple[IpraRecord, Ipra] | None:
    """The person's ИПРА that supersedes every other (``latest_ipra``), with its row."""
    # a destroyed copy (engine.data_purge: 152-ФЗ art. 21 ч.5) is no longer an ИПРА
    rows = [r for r in ipra_history(session, person_id) if "destroyed_at" not in r.document]
    models = {r.id: Ipra.model_validate(r.document) for r in rows}
    try:
        latest = latest_ipra(models.values())
    except IpraOrderError as exc:
        raise EngineError(f"ipra: {exc}") from None
    if latest is None:
        return None
    row = next(r for r in rows if r.number == latest.number)
    return row, latest


def _upsert_detail(session: Session, person: Person, app: Application, *,
                   now: datetime) -> None:
    p = app.person
    detail = session.get(PersonDetail, person.id) or PersonDetail(
        person_id=person.id, sex=p.sex.value, identity_document={}, registration_address={},
        region_code=region_of(app), preferred_channel=p.preferred_channel.value, updated_at=now)
    detail.sex = p.sex.value
    detail.identity_document = p.identity_document.model_dump(mode="json")
    detail.registration_address = p.registration_address.model_dump(mode="json")
    detail.actual_address = p.actual_address.model_dump(mode="json") if p.actual_address else None
    detail.region_code = region_of(app)
    detail.phones = [ph.model_dump(mode="json") for ph in p.phones]
    detail.email = p.email
    detail.preferred_channel = p.preferred_channel.value
    detail.processing_stopped_at = None
    detail.destroy_by = None
    detail.updated_at = now
    session.add(detail)


def person_recipient(app: Application, person: Person) -> Recipient | None:
    """Where the person is told (004 п.7: the way they chose). E-mail, a phone (SMS), a
    mobile (messenger) and the portal are outbox channels; ``post`` and ``in_person`` are
    not: the region's coordinators get the message to pass on by post or in person."""
    p = app.person
    key = f"person:{person.id}"
    ch = p.preferred_channel
    if ch is ContactChannel.email and p.email:
        return Recipient(key, Channel.email, p.email)
    if ch is ContactChannel.phone and p.phones:
        return Recipient(key, Channel.sms, p.phones[0].number)
    if ch is ContactChannel.messenger:
        mobile = next((x.number for x in p.phones if x.kind is PhoneKind.mobile), None)
        if mobile:
            return Recipient(key, Channel.messenger, mobile)
    if ch is ContactChannel.portal:
        return Recipient(key, Channel.portal, key)
    return None


def _tell_decision(session: Session, app: Application, person: Person, record: ApplicationRecord,
                   decision: Decision, *, now: datetime) -> bool:
    """The person is told why and what they can do (the decision's ``explanation_ru``)."""
    body = decision.explanation_ru or "Заявление зарегистрировано."
    subject = "Решение по вашему заявлению"
    recipient = person_recipient(app, person)
    if recipient is not None:
        return queue_notification(session, dedupe_key=f"application:{record.id}:decision",
                                  recipient=recipient, subject=subject, body=body,
                                  now=now) is not None
    # post / in person: staff pass it on (004 п.7)
    how = "почтой" if app.person.preferred_channel is ContactChannel.post else "лично"
    coordinators = session.exec(
        select(StaffUser).where(StaffUser.region == record.region,
                                StaffUser.role == StaffRole.coordinator,
                                col(StaffUser.active).is_(True)).order_by(col(StaffUser.id)))
    sent = False
    for user in coordinators:
        row = queue_notification(
            session, dedupe_key=f"application:{record.id}:decision:{user.id}",
            recipient=staff_recipient(user),
            subject=f"Сообщить заявителю решение ({how}), заявление {record.id}",
            body=body, now=now)
        sent = sent or row is not None
    return sent


def register_full_application(
    session: Session, cfg: EngineConfig, *, raw: object, consent: object | None = None,
    now: datetime, actor: str = SYSTEM, coordinator_id: str | None = None,
    settings: EligibilitySettings | None = None,
    template_versions: Mapping[str, int] | None = None,
) -> Registered:
    """Register an application of the 363н form with its consent, in the caller's transaction.

    - 004 appendix form; 001 Регламент п.14, п.15: ``raw`` is validated
      (``validate_application``); every bad field is raised at once (``ApplicationInvalid``)
      before anything is written.
    - The person is found by SNILS or created (never duplicated).
    - 152-ФЗ art. 9 ч.1, art. 10 ч.2 п.1: ``consent`` (a ``ConsentRecord``, optional when
      one is on file) is appended as a version; ``consent_for_application`` on the person's
      history must be valid at ``registered_at`` (``ConsentRefused`` otherwise: the caller
      rolls back, nothing is registered).
    - The decision (``models.eligibility.decide``) on the current ИПРА is stored with it.
    - Eligible: the route is formed by ``engine.routes.transitions.register_application`` with
      ``registered_at`` of the application (001 Порядок п.10). Ineligible: registered, the
      person told ``explanation_ru`` through their preferred channel (004 п.7).
    - ``template_versions``: the version of a route template to form where it is not the
      newest (a version published later, e.g. the demo's first days before accompaniment v2);
      by default the newest data template.
    """
    app, given = _check_form(raw, consent, now=now, cfg=cfg)
    p = app.person
    region = region_of(app)
    person, created = find_or_create_person(
        session, snils=p.snils, full_name=p.full_name.display(), birth_date=p.birth_date,
        region=region, now=now, actor=actor)
    if given is not None:
        if given.subject_snils != p.snils:
            raise ApplicationInvalid((FieldError(
                field="consent.subject_snils", rule="consent_of_another_person",
                message_ru="Согласие дано на обработку данных другого лица"),))
        _store_consent(session, person, given, now=now, actor=actor)
    history = [ConsentRecord.model_validate(r.record) for r in consent_history(session, person.id)]
    status = consent_for_application(history, app)
    if not status.valid:
        assert status.problem is not None
        raise ConsentRefused(status.problem.value, status.message_ru)
    assert status.record is not None
    # withdrawn since the application's instant: processing has stopped (art. 9 ч.2)
    now_version = current_version(
        [h for h in history if h.consent_id == status.record.consent_id], now)
    if now_version is not None and now_version.withdrawn_at is not None:
        raise ConsentRefused(ConsentProblem.withdrawn.value,
                             consent_status([now_version], purpose=needed_for(app)[0],
                                            at=now).message_ru)
    current = current_ipra(session, person.id)
    decision = decide(app, current[1] if current else None, settings)
    _upsert_detail(session, person, app, now=now)
    person.region = region
    if app.applicant.kind in (ApplicantKind.legal_representative,
                              ApplicantKind.authorised_representative) \
            and app.applicant.full_name is not None:
        person.representative = app.applicant.full_name.display()
    session.add(person)
    record = ApplicationRecord(
        id=new_id("ap"), person_id=person.id, region=region, kind=app.request.kind.value,
        action=app.request.action.value if app.request.action else None,
        participant=app.request.participant.value if app.request.participant else None,
        applicant_kind=app.applicant.kind.value, channel=app.submission.channel.value,
        signature=app.submission.signature.value, registered_at=app.submission.registered_at,
        application_date=app.application_date, form=app.model_dump(mode="json"),
        eligible=decision.eligible, decision=decision.model_dump(mode="json"),
        ipra_id=current[0].id if current else None, consent_id=status.record.consent_id,
        consent_version=status.record.version, registered_by=actor)
    session.add(record)
    session.flush()
    if app.disability is not None:
        d = app.disability
        session.add(DisabilityRecord(
            person_id=person.id, application_id=record.id, group=d.group.value,
            cause=d.cause, established_on=d.established_on, until=d.until,
            indefinite=d.indefinite, recorded_at=now))
    route: Route | None = None
    template = ROUTE_TEMPLATES.get(app.request.kind)
    if decision.eligible and template and app.request.action is not AccompanimentAction.stop:
        # the route as the regulations describe it: the newest data template (the route
        # keeps its version), its steps' conditions read on the person's ИПРА (004 п.8, п.10б)
        spec = spec_for(template, (template_versions or {}).get(template))
        try:
            route = form_route(
                session, cfg, now=now, person_id=person.id, template_code=template,
                region=region, ipra=current[1] if current else None,
                version=spec.version, registered_at=app.submission.registered_at,
                coordinator_id=coordinator_id, actor=actor, roles=_step_roles(spec, app))
        except calendars.CalendarError as exc:
            raise EngineError(f"submission.registered_at: {exc}") from None
        record.route_id = route.id
        session.add(record)
    audit.record(session, at=now, actor=actor, entity="application", entity_id=record.id,
                 route_id=route.id if route else None, action="registered",
                 after={"person_id": person.id, "kind": record.kind, "region": region,
                        "eligible": decision.eligible, "route_id": route.id if route else None,
                        "registered_at": record.registered_at,
                        "consent": f"{record.consent_id}/v{record.consent_version}",
                        "ipra_id": record.ipra_id})
    notified = False
    if not decision.eligible:
        notified = _tell_decision(session, app, person, record, decision, now=now)
    session.flush()
    return Registered(application=record, person=person, decision=decision, route=route,
                      person_created=created, notified=notified)

