"""Importing an ИПРА extract (``fri-ipra-extract/1``, docs/ipra.md) into the person's file,
in the caller's transaction.

The file is validated whole first (``parse_ipra_extract``: every bad field named, nothing
stored from a bad file). The person is found by SNILS (never duplicated) or created from the
extract's subject. Each ИПРА is a row; a newer one of the same person supersedes the older,
which stays in the history with ``superseded_by_id`` (issue 10; 004 п.13 а). An ИПРА is
not taken for a person whose consent was withdrawn (152-ФЗ art. 9 ч.2: processing stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from engine.errors import EngineError
from engine.infra import audit
from engine.persons.applications import find_or_create_person, ipra_history
from engine.persons.consent_withdrawal import processing_stopped
from engine.routes.termination import on_new_ipra
from engine.routes.transitions import EngineConfig
from models.input_validation import FieldError
from models.ipra import Ipra, IpraOrderError, latest_ipra, parse_ipra_extract
from models.person_file import IpraRecord
from models.persons import Person


class IpraInvalid(EngineError):
    """The extract has invalid fields: all of them (nothing stored)."""

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        super().__init__("ipra: invalid fields: " + ", ".join(sorted({e.field for e in errors})))
        self.errors = errors


class IpraConflict(EngineError):
    """The ИПРА cannot be taken as it is (number held by another person, order unclear,
    processing stopped)."""


@dataclass(frozen=True)
class IpraImported:
    record: IpraRecord
    person: Person
    created: bool  # False: the same ИПРА was imported before (idempotent)
    person_created: bool
    superseded: tuple[str, ...]  # numbers of the ИПРА the new one supersedes


def import_ipra(session: Session, *, text: str | bytes, now: datetime,
                actor: str, cfg: EngineConfig | None = None) -> IpraImported:
    """Import one extract; IpraInvalid (every field) or IpraConflict, else the stored row.

    With ``cfg``, a new ИПРА acts on the person's live routes in the same transaction
    (``engine.routes.termination.on_new_ipra``): no degree-2/3 limitation left ends them
    (004 п.13 в), else their ИПРА-expiry timers follow the new term (п.13 а)."""
    checked = parse_ipra_extract(text)
    if checked.value is None:
        raise IpraInvalid(checked.errors)
    extract = checked.value
    ipra = extract.ipra
    subj = ipra.subject
    existing = session.exec(select(IpraRecord).where(IpraRecord.number == ipra.number)).first()
    person, person_created = find_or_create_person(
        session, snils=subj.snils, full_name=subj.full_name.display(),
        birth_date=subj.birth_date, region=ipra.bureau.region_code, now=now, actor=actor)
    if existing is not None:
        if existing.person_id != person.id:
            raise IpraConflict("ipra.number: this ИПРА number is held by another person")
        if "destroyed_at" in existing.document:  # our copy was destroyed (engine.data_purge)
            if processing_stopped(session, person.id):
                raise IpraConflict("person: consent withdrawn, the person's data are not "
                                   "processed (152-ФЗ art. 9 ч.2)")
            existing.document = ipra.model_dump(mode="json")  # drawn again from ФГИС ФРИ
            session.add(existing)
            audit.record(session, at=now, actor=actor, entity="ipra", entity_id=str(existing.id),
                         action="imported_again", after={"person_id": person.id,
                                                         "extract_id": existing.extract_id})
            return IpraImported(existing, person, True, person_created, ())
        if Ipra.model_validate(existing.document) != ipra:
            raise IpraConflict("ipra.number: an ИПРА with this number was imported with "
                               "other contents")
        return IpraImported(existing, person, False, person_created, ())
    if processing_stopped(session, person.id):
        raise IpraConflict("person: consent withdrawn, the person's data are not processed "
                           "(152-ФЗ art. 9 ч.2)")
    rows = ipra_history(session, person.id)
    olds = {r.number: Ipra.model_validate(r.document) for r in rows
            if "destroyed_at" not in r.document}
    try:
        latest = latest_ipra([*olds.values(), ipra])
    except IpraOrderError:
        raise IpraConflict("ipra.issued_on: another ИПРА of the person is issued the same day; "
                           "staff must say which one is in force") from None
    assert latest is not None
    row = IpraRecord(number=ipra.number, person_id=person.id, issued_on=ipra.issued_on,
                     valid_from=ipra.valid_from, last_day=ipra.last_day,
                     extract_id=extract.extract.extract_id,
                     document=ipra.model_dump(mode="json"), imported_by=actor,
                     imported_at=now)
    session.add(row)
    session.flush()
    # each ИПРА is superseded by the next one issued after it (004 п.13 а); both are kept
    ordered = sorted([*rows, row], key=lambda r: r.issued_on)
    superseded: list[str] = []
    for older, newer in zip(ordered, ordered[1:], strict=False):
        if older.superseded_by_id != newer.id:
            older.superseded_by_id = newer.id
            session.add(older)
            if newer.id == row.id:
                superseded.append(older.number)
    session.flush()
    audit.record(session, at=now, actor=actor, entity="ipra", entity_id=str(row.id),
                 action="imported",
                 after={"person_id": person.id, "extract_id": row.extract_id,
                        "current": latest.number == ipra.number,
                        "supersedes": [str(r.id) for r in rows if r.number in superseded]})
    if cfg is not None and latest.number == ipra.number:
        on_new_ipra(session, cfg, person_id=person.id, now=now, actor=actor)
    return IpraImported(row, person, True, person_created, tuple(superseded))
