"""Destroying personal data whose term is over (152-ФЗ art. 21 ч.5), one person per
transaction.

After a consent withdrawal (``engine.consent_withdrawal``) the person's contacts and our copy
of the ИПРА are due for destruction by ``person_detail.destroy_by`` (the withdrawal's day + 30
days): art. 21 ч.5 — on withdrawal the operator stops processing and destroys the data within
30 days unless another basis (a federal law, a contract) lets it keep them. ``purge_due``
destroys, for each person whose day has come and who has given no new consent meanwhile:

- ``person_detail``: the identity document, the registration and actual addresses, phones,
  e-mail (the region code, the sex and the preferred channel stay: they identify nothing);
- the contacts in each application's copy of the form (``person`` and ``applicant``:
  addresses, phones, e-mail) — the application itself is kept blocked (art. 3 п.7; art. 21
  ч.5 "unless federal law provides otherwise", 125-ФЗ: a registered record);
- our copy of each ИПРА (``ipra.document``): health data (art. 10 ч.4); the number and dates
  stay as the record that one was held; the original is in ФГИС ФРИ (181-ФЗ art. 5.1);
- the person's address on the notifications sent to them.

Kept: ``person`` (name, SNILS, birth date: the identifiers of the blocked records), consent
versions (art. 9 ч.3), the audit log (identifiers only), route state. Each destruction is
audited (what was destroyed, never the data). ``rehab persons purge-due`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import calendars
from engine.infra import audit
from engine.persons.consent_withdrawal import processing_stopped
from models.notifications import Notification
from models.person_file import ApplicationRecord, IpraRecord, PersonDetail

BASIS = "152-ФЗ ст. 21 ч. 5"
DESTROYED = "destroyed"

_FORM_CONTACTS = {"person": ("registration_address", "actual_address", "phones", "email"),
                  "applicant": ("address", "phones", "email")}


@dataclass
class Purged:
    persons: list[str] = field(default_factory=list)
    applications: int = 0
    ipra_copies: int = 0
    notifications: int = 0
    skipped_new_consent: list[str] = field(default_factory=list)


def _today(at: datetime, region: str) -> date:
    """The local day of ``at`` in the person's region (UTC for a region with no calendar)."""
    try:
        tz = calendars.get_calendar(region).timezone
    except calendars.CalendarError:
        tz = "UTC"
    local = pendulum.instance(at).in_timezone(tz)
    return date(local.year, local.month, local.day)


def due_persons(session: Session, *, now: datetime) -> list[str]:
    """Persons whose contacts are due for destruction at ``now`` and not yet destroyed."""
    rows = session.exec(select(PersonDetail).where(
        col(PersonDetail.destroy_by).is_not(None), col(PersonDetail.destroyed_at).is_(None))
        .order_by(col(PersonDetail.person_id)))
    return [d.person_id for d in rows
            if d.destroy_by is not None and d.destroy_by <= _today(now, d.region_code)]


def _strip_form(form: dict[str, Any]) -> dict[str, Any]:
    out = dict(form)
    for section, keys in _FORM_CONTACTS.items():
        part = out.get(section)
        if isinstance(part, dict):
            out[section] = {k: ([] if k == "phones" else None) if k in keys else v
                            for k, v in part.items()}
    return out | {"contacts_destroyed": True}


def purge_person(session: Session, person_id: str, *, now: datetime, actor: str,
                 out: Purged) -> bool:
    """Destroy one person's due data in the caller's transaction; False when not due (a new
    consent given meanwhile, or destroyed already)."""
    detail = session.get(PersonDetail, person_id, with_for_update=True)
    if detail is None or detail.destroyed_at is not None or detail.destroy_by is None:
        return False
    if not processing_stopped(session, person_id):
        out.skipped_new_consent.append(person_id)
        return False
    detail.identity_document = {}
    detail.registration_address = {}
    detail.actual_address = None
    detail.phones = []
    detail.email = None
    detail.destroyed_at = now
    session.add(detail)
    apps = list(session.exec(select(ApplicationRecord).where(
        ApplicationRecord.person_id == person_id).order_by(col(ApplicationRecord.id))))
    for app in apps:
        app.form = _strip_form(app.form)
        session.add(app)
    ipras = list(session.exec(select(IpraRecord).where(IpraRecord.person_id == person_id)
                              .order_by(col(IpraRecord.id))))
    for r in ipras:
        if "destroyed_at" not in r.document:
            r.document = {"destroyed_at": now.isoformat(), "basis": BASIS}
            session.add(r)
            out.ipra_copies += 1
    keys = [f"application:{a.id}:decision" for a in apps]
    notes = list(session.exec(select(Notification).where(col(Notification.dedupe_key)
                                                         .in_(keys)))) if keys else []
    for n in notes:
        n.recipient = DESTROYED
        session.add(n)
    out.applications += len(apps)
    out.notifications += len(notes)
    out.persons.append(person_id)
    audit.record(session, at=now, actor=actor, entity="person", entity_id=person_id,
                 action="personal_data_destroyed",
                 after={"destroy_by": detail.destroy_by, "contacts": True,
                        "application_forms": len(apps), "ipra_copies": len(ipras),
                        "notifications": len(notes)}, reason=BASIS)
    session.flush()
    return True


def purge_due(engine: Engine, *, now: datetime, actor: str) -> Purged:
    """Destroy every due person's data, one transaction per person (a failure leaves the
    others done and that person due for the next run)."""
    out = Purged()
    with Session(engine) as s:
        ids = due_persons(s, now=now)
    for person_id in ids:
        with Session(engine) as s:
            purge_person(s, person_id, now=now, actor=actor, out=out)
            s.commit()
    return out
