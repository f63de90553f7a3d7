"""The person's file API (issue 10): applications of the 363н form with consent, persons,
the ИПРА, consent withdrawal, eligibility decisions.

Staff act in their own region (an administrator in any), as the route API does; a person,
application or ИПРА of another region is answered 404 (its existence is not disclosed).
**Every read of a person's data is an audit record** (``engine.persons.reads``). Errors name
fields and rules, never the data. SNILS is never in a URL (access logs): the search by
SNILS is a POST.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from api.errors import ValidationErrorBody
from engine.errors import EngineError
from engine.infra.clock import Clock
from engine.persons.applications import (
    ApplicationInvalid,
    ConsentRefused,
    PersonConflict,
    current_ipra,
    find_person,
    ipra_history,
    register_full_application,
)
from engine.persons.consent_withdrawal import (
    NothingToWithdraw,
    processing_stopped,
    withdraw_consent,
)
from engine.persons.ipra_import import IpraConflict, IpraInvalid, import_ipra
from engine.persons.reads import (
    application_ids_of,
    applications_of_region,
    get_application,
    get_ipra,
    get_person,
    person_detail,
    record_read,
    route_ids_of,
)
from engine.routes.transitions import EngineConfig
from models.basic_application import SNILS_INPUT_PATTERN
from models.input_validation import FieldError
from models.person_file import ApplicationRecord, IpraRecord
from models.persons import Person
from models.snils import SnilsError, normalize_snils
from models.staff import StaffRole, StaffUser

router = APIRouter(prefix="/api", tags=["person-file"])

Staff = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator, StaffRole.supervisor,
                                                  StaffRole.admin))]
Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
IpraId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # integer ids are 32-bit on PostgreSQL

Responses = dict[int | str, dict[str, Any]]
NOT_JSON: Responses = {400: {"description": "body: not valid JSON"}}
AUTH: Responses = {401: {"description": "authorization: a staff bearer token is required"},
        403: {"description": "role: not permitted for this role"}}
NOT_FOUND: Responses = {404: {"description": "<entity>_id: not found (or of another region)"}}


def _errors(detail: str, errors: tuple[FieldError, ...] | list[FieldError],
            status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": [
        {"field": e.field, "rule": e.rule, "message": e.message_ru} for e in errors]},
        status_code=status)


def _actor(staff: StaffUser) -> str:
    return f"staff:{staff.id}"


def _sees(staff: StaffUser, region: str) -> bool:
    return staff.role is StaffRole.admin or staff.region == region


# ------------------------------------------------------------------------------ applications
class FullApplicationIn(BaseModel):
    """The application of the 363н form (docs/person-file.md) and, unless one is on file,
    the person's consent record (152-ФЗ art. 9)."""

    model_config = ConfigDict(extra="forbid")

    # validated by the domain layer (every field's message in Russian, all at once); the
    # schema published is the form's own (components ``Application``, ``ConsentRecord``:
    # ``x-component``, api/errors.py)
    application: dict[str, Any] = Field(
        description="the form: submission, request, applicant, person, disability, "
                    "consent_confirmed", json_schema_extra={"x-component": "Application"})
    consent: dict[str, Any] | None = Field(
        default=None, description="a ConsentRecord version to append (omit: the one on file)",
        json_schema_extra={"x-component": "ConsentRecord"})


class ApplicationOut(BaseModel):
    id: str
    person_id: str
    region: str
    kind: str
    action: str | None
    participant: str | None
    applicant_kind: str
    channel: str
    signature: str
    registered_at: datetime
    application_date: date
    eligible: bool
    route_id: str | None
    consent: str
    ipra_id: int | None
    blocked: bool
    explanation_ru: str | None = None


class ApplicationFull(ApplicationOut):
    form: dict[str, Any]
    decision: dict[str, Any]


def _out(a: ApplicationRecord) -> ApplicationOut:
    return ApplicationOut(
        id=a.id, person_id=a.person_id, region=a.region, kind=a.kind, action=a.action,
        participant=a.participant, applicant_kind=a.applicant_kind, channel=a.channel,
        signature=a.signature, registered_at=a.registered_at,
        application_date=a.application_date, eligible=a.eligible, route_id=a.route_id,
        consent=f"{a.consent_id}/v{a.consent_version}", ipra_id=a.ipra_id,
        blocked=a.blocked_at is not None, explanation_ru=a.decision.get("explanation_ru"))


@router.post("/person-file/applications", status_code=201, response_model=ApplicationOut,
             responses={**AUTH, **NOT_JSON,
                        403: {"description": "region: the application's region is not yours"},
                        409: {"description": "person.birth_date: the SNILS is registered for "
                                             "a person with another birth date"},
                        422: {"model": ValidationErrorBody,
                              "description": "every invalid field of the form and the consent, "
                                             "or `consent`: no valid consent (missing, "
                                             "expired, withdrawn, …) — nothing stored"}})
def create_application(body: FullApplicationIn, staff: Coordinator, engine: EngineDep,
                       clock: ClockDep, cfg: CfgDep) -> Any:
    """Register an application with consent: the person by SNILS (never duplicated), the
    eligibility decision stored with it; eligible → the route is formed (its first request
    due 1 working day after ``registered_at``, 001 Порядок п.10); ineligible → registered,
    the person told why (004 п.7). One transaction; on any error nothing is stored."""
    now = clock.now()
    with Session(engine, expire_on_commit=False) as s:
        try:
            reg = register_full_application(
                s, cfg, raw=body.application, consent=body.consent, now=now,
                actor=_actor(staff),
                coordinator_id=staff.id if staff.role is StaffRole.coordinator else None)
        except ApplicationInvalid as exc:
            s.rollback()
            return _errors(str(exc), exc.errors)
        except ConsentRefused as exc:
            s.rollback()
            return _errors(str(exc), [exc.error])
        except PersonConflict as exc:
            s.rollback()
            raise HTTPException(409, str(exc)) from None
        if not _sees(staff, reg.application.region):
            s.rollback()
            raise HTTPException(403, f"region: you act in region {staff.region}, not "
                                     f"{reg.application.region}")
        s.commit()
        return _out(reg.application)


def _application(s: Session, staff: StaffUser, application_id: str) -> ApplicationRecord:
    a = get_application(s, application_id)
    if a is None or not _sees(staff, a.region):
        raise HTTPException(404, "application_id: no such application")
    return a


@router.get("/person-file/applications/{application_id}", response_model=ApplicationFull,
            responses={**AUTH, **NOT_FOUND})
def read_application(application_id: Id, staff: Staff, engine: EngineDep,
                     clock: ClockDep) -> Any:
    """The application as registered (the form) with its decision (the read is audited)."""
    with Session(engine, expire_on_commit=False) as s:
        a = _application(s, staff, application_id)
        record_read(s, actor=_actor(staff), now=clock.now(), person_id=a.person_id,
                    what="application", entity="application", entity_id=a.id,
                    route_id=a.route_id)
        s.commit()
        return ApplicationFull(**_out(a).model_dump(), form=a.form, decision=a.decision)


@router.get("/person-file/applications/{application_id}/eligibility",
            responses={**AUTH, **NOT_FOUND})
def read_eligibility(application_id: Id, staff: Staff, engine: EngineDep,
                     clock: ClockDep) -> dict[str, Any]:
    """The eligibility decision: route kind, yes/no, each rule with its clause, facts and
    result, the explanation for the person (the read is audited)."""
    with Session(engine, expire_on_commit=False) as s:
        a = _application(s, staff, application_id)
        record_read(s, actor=_actor(staff), now=clock.now(), person_id=a.person_id,
                    what="eligibility", entity="application", entity_id=a.id,
                    route_id=a.route_id)
        s.commit()
        return {"application_id": a.id, **a.decision}


@router.get("/person-file/applications", response_model=list[ApplicationOut],
            responses={**AUTH, 403: {"description": "region: not your region"}})
def list_applications(
    staff: Staff, engine: EngineDep, clock: ClockDep,
    region: Annotated[str | None, Query(min_length=1, max_length=8,
                                        pattern=r"^[0-9]{1,8}$")] = None,
    kind: Annotated[str | None, Query(max_length=30, pattern=r"^[a-z_]+$")] = None,
    eligible: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Applications of a region (default: yours), newest first; each read is audited."""
    region = region or staff.region
    if not _sees(staff, region):
        raise HTTPException(403, f"region: you act in region {staff.region}, not {region}")
    with Session(engine, expire_on_commit=False) as s:
        rows = applications_of_region(s, region, kind=kind, eligible=eligible, limit=limit)
        now = clock.now()
        for a in rows:
            record_read(s, actor=_actor(staff), now=now, person_id=a.person_id,
                        what="application_summary", entity="application", entity_id=a.id,
                        route_id=a.route_id)
        s.commit()
        return [_out(a) for a in rows]


# ----------------------------------------------------------------------------------- persons
class PersonOut(BaseModel):
    id: str
    full_name: str
    snils: str
    birth_date: date
    region: str
    representative: str | None
    sex: str | None = None
    identity_document: dict[str, Any] | None = None
    registration_address: dict[str, Any] | None = None
    actual_address: dict[str, Any] | None = None
    phones: list[dict[str, Any]] | None = None
    email: str | None = None
    preferred_channel: str | None = None
    processing_stopped: bool = False
    contacts_destroy_by: date | None = None
    application_ids: list[str] = Field(default_factory=list)
    route_ids: list[str] = Field(default_factory=list)
    current_ipra_id: int | None = None


def _person_out(s: Session, p: Person) -> PersonOut:
    d = person_detail(s, p.id)
    stopped = processing_stopped(s, p.id)
    apps = application_ids_of(s, p.id)
    routes = route_ids_of(s, p.id)
    cur = current_ipra(s, p.id)
    out = PersonOut(id=p.id, full_name=p.full_name, snils=p.snils, birth_date=p.birth_date,
                    region=p.region, representative=p.representative,
                    processing_stopped=stopped, application_ids=apps, route_ids=routes,
                    current_ipra_id=cur[0].id if cur else None)
    if d is not None:
        out.sex = d.sex
        out.contacts_destroy_by = d.destroy_by
        out.preferred_channel = d.preferred_channel
        if not stopped:  # withdrawn: contacts are blocked (152-ФЗ art. 21 ч.5), not shown
            out.identity_document = d.identity_document
            out.registration_address = d.registration_address
            out.actual_address = d.actual_address
            out.phones = d.phones
            out.email = d.email
    return out


@router.get("/persons/{person_id}", response_model=PersonOut,
            responses={**AUTH, **NOT_FOUND})
def read_person(person_id: Id, staff: Staff, engine: EngineDep, clock: ClockDep) -> Any:
    """The person's file: details, applications, routes, the current ИПРА (audited read;
    after a consent withdrawal the contacts are not shown)."""
    with Session(engine, expire_on_commit=False) as s:
        p = get_person(s, person_id)
        if p is None or not _sees(staff, p.region):
            raise HTTPException(404, "person_id: no such person")
        out = _person_out(s, p)
        record_read(s, actor=_actor(staff), now=clock.now(), person_id=p.id, what="person")
        s.commit()
        return out


class SnilsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snils: str = Field(pattern=SNILS_INPUT_PATTERN, max_length=40,
                       description="XXX-XXX-XXX YY with a valid check number (11 digits; "
                       "spaces and hyphens between them are ignored)")


@router.post("/persons/search", response_model=PersonOut,
             responses={**AUTH, **NOT_JSON,
                        404: {"description": "snils: no such person (or not yours)"},
                        422: {"model": ValidationErrorBody, "description": "snils: <rule>"}})
def find_by_snils(body: SnilsQuery, staff: Coordinator, engine: EngineDep,
                  clock: ClockDep) -> Any:
    """Find a person by SNILS — only a coordinator of the person's region (or an
    administrator); anyone else gets 404. The SNILS travels in the body, never the URL;
    the search is audited whether found or not."""
    try:
        snils = normalize_snils(body.snils)
    except SnilsError as exc:
        raise HTTPException(422, str(exc).split(" — ")[0][:200]) from None
    with Session(engine, expire_on_commit=False) as s:
        p = find_person(s, snils)
        now = clock.now()
        if p is None or not _sees(staff, p.region):
            record_read(s, actor=_actor(staff), now=now, person_id="-", entity="person_search",
                        entity_id="not_found", what="snils_search")
            s.commit()
            raise HTTPException(404, "snils: no such person")
        out = _person_out(s, p)
        record_read(s, actor=_actor(staff), now=now, person_id=p.id, what="person_by_snils")
        s.commit()
        return out


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent_id: str | None = Field(default=None, min_length=1, max_length=40,
                                   description="one consent; omit: every consent in effect")


class WithdrawalOut(BaseModel):
    person_id: str
    consents: list[str]
    routes_suspended: list[str]
    cancel_notices: int
    timers_cancelled: int
    applications_blocked: int


@router.post("/persons/{person_id}/consent/withdraw", response_model=WithdrawalOut,
             responses={**AUTH, **NOT_JSON, **NOT_FOUND,
                        409: {"description": "consent: no consent in effect to withdraw"}})
def withdraw(person_id: Id, staff: Coordinator, engine: EngineDep, clock: ClockDep,
             cfg: CfgDep, body: Annotated[WithdrawIn | None, Body()] = None) -> Any:
    """Record the person's withdrawal of consent (152-ФЗ art. 9 ч.2; 004 п.11): the
    withdrawal version is appended, the person's active routes are suspended (open requests
    withdrawn with a cancel notice to each agency, timers stopped), applications blocked,
    contacts due for destruction in 30 days (art. 21 ч.5). Audited; one transaction."""
    with Session(engine, expire_on_commit=False) as s:
        p = get_person(s, person_id)
        if p is None or not _sees(staff, p.region):
            raise HTTPException(404, "person_id: no such person")
        try:
            w = withdraw_consent(s, cfg, person_id=p.id, now=clock.now(), actor=_actor(staff),
                                 consent_id=body.consent_id if body else None)
        except NothingToWithdraw as exc:
            raise HTTPException(409, str(exc)) from None
        s.commit()
        return WithdrawalOut(person_id=w.person_id, consents=w.consents,
                             routes_suspended=w.routes_suspended,
                             cancel_notices=len(w.cancel_notices),
                             timers_cancelled=w.timers_cancelled,
                             applications_blocked=w.applications_blocked)


# -------------------------------------------------------------------------------------- ИПРА
class IpraOut(BaseModel):
    id: int
    person_id: str
    number: str
    issued_on: date
    valid_from: date
    last_day: date | None
    extract_id: str
    superseded_by_id: int | None
    current: bool
    document: dict[str, Any] | None = None


def _ipra_out(r: IpraRecord, *, current: bool, full: bool) -> IpraOut:
    assert r.id is not None
    return IpraOut(id=r.id, person_id=r.person_id, number=r.number, issued_on=r.issued_on,
                   valid_from=r.valid_from, last_day=r.last_day, extract_id=r.extract_id,
                   superseded_by_id=r.superseded_by_id, current=current,
                   document=r.document if full else None)


@router.post("/ipra", response_model=IpraOut, status_code=201,
             responses={**AUTH, **NOT_JSON,
                        200: {"description": "already imported (the same ИПРА)"},
                        404: {"description": "region: the ИПРА's person is not of your region"},
                        409: {"description": "ipra.number / ipra.issued_on / person: cannot "
                                             "be taken as it is"},
                        422: {"model": ValidationErrorBody,
                              "description": "every bad field of the extract; nothing stored"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {
                     "$ref": "#/components/schemas/IpraExtract",
                     "description": "an fri-ipra-extract/1 file (docs/ipra.md)"}}}}})
async def import_ipra_endpoint(request: Request, staff: Coordinator, engine: EngineDep,
                               clock: ClockDep) -> Any:
    """Import an ИПРА extract (``fri-ipra-extract/1``, docs/ipra.md): every bad field named
    and nothing stored from a bad file; a newer ИПРА supersedes the older, both kept."""
    raw = await request.body()
    if len(raw) > 1_000_000:
        return _errors("body: too large", [FieldError(
            field="body", rule="too_large", message_ru="Файл слишком большой (более 1 МБ)")])
    # the database work runs in the thread pool, as the synchronous endpoints' does
    return await run_in_threadpool(_import_ipra, raw, staff, engine, clock,
                                   request.app.state.cfg)


def _import_ipra(raw: bytes, staff: StaffUser, engine: Engine, clock: Clock,
                 cfg: EngineConfig) -> Any:
    now = clock.now()
    with Session(engine, expire_on_commit=False) as s:
        try:
            # a new ИПРА acts on the person's routes (004 п.13 а, в)
            res = import_ipra(s, text=raw, now=now, actor=_actor(staff), cfg=cfg)
        except IpraInvalid as exc:
            s.rollback()
            return _errors(str(exc), exc.errors)
        except (IpraConflict, PersonConflict) as exc:
            s.rollback()
            raise HTTPException(409, str(exc)) from None
        if not _sees(staff, res.person.region):
            s.rollback()
            raise HTTPException(404, "region: no person of your region with this ИПРА")
        cur = current_ipra(s, res.person.id)
        s.commit()
        out = _ipra_out(res.record, current=bool(cur and cur[0].id == res.record.id),
                        full=False)
        return JSONResponse(out.model_dump(mode="json"),
                            status_code=201 if res.created else 200)


@router.get("/persons/{person_id}/ipra", response_model=list[IpraOut],
            responses={**AUTH, **NOT_FOUND})
def person_ipra(person_id: Id, staff: Staff, engine: EngineDep, clock: ClockDep) -> Any:
    """The person's ИПРА history, oldest first; superseded ones kept (audited read)."""
    with Session(engine, expire_on_commit=False) as s:
        p = get_person(s, person_id)
        if p is None or not _sees(staff, p.region):
            raise HTTPException(404, "person_id: no such person")
        rows = ipra_history(s, p.id)
        try:
            cur = current_ipra(s, p.id)
        except EngineError:
            cur = None
        record_read(s, actor=_actor(staff), now=clock.now(), person_id=p.id,
                    what="ipra_history")
        s.commit()
        return [_ipra_out(r, current=bool(cur and cur[0].id == r.id), full=True)
                for r in rows]


@router.get("/ipra/{ipra_id}", response_model=IpraOut, responses={**AUTH, **NOT_FOUND})
def read_ipra(ipra_id: IpraId, staff: Staff, engine: EngineDep, clock: ClockDep) -> Any:
    """One ИПРА with its limitations and measures (audited read)."""
    with Session(engine, expire_on_commit=False) as s:
        r = get_ipra(s, ipra_id)
        p = get_person(s, r.person_id) if r is not None else None
        if r is None or p is None or not _sees(staff, p.region):
            raise HTTPException(404, "ipra_id: no such ИПРА")
        try:
            cur = current_ipra(s, p.id)
        except EngineError:
            cur = None
        record_read(s, actor=_actor(staff), now=clock.now(), person_id=p.id, what="ipra",
                    entity="ipra", entity_id=str(r.id))
        s.commit()
        return _ipra_out(r, current=bool(cur and cur[0].id == r.id), full=True)

