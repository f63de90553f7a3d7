"""Who provides (001 Регламент п.15 пп.1–2; 004 п.10 пп.а–б): the person's choice among the
agencies of the role in their region, refused with a clear error otherwise; without a
choice, the region's rule — least_loaded (the default) or nearest — never a hash."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.agencies.participants import add_agency
from engine.agencies.providers import record_choice
from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.agencies import Agency
from models.person_file import PersonDetail
from models.persons import Person
from models.providers import Candidate, ProviderChoice, ProviderRule, pick
from models.routes import Step
from models.templates import _data_template
from tests.conftest import kaliningrad
from tests.ladder.conftest import audits, new_route

NOW = kaliningrad(2026, 1, 12, 10, 0)


@pytest.fixture(autouse=True)
def _fresh_data_templates() -> None:
    """accompaniment v2 with parallel steps: the organisation's step (provider) opens at
    registration."""
    _data_template.cache_clear()


def _provider_of(db: Engine, clock: DbClock, cfg: EngineConfig, person: Person) -> str:
    route_id = new_route(db, clock, cfg, person, template="accompaniment", at=NOW,
                         template_version=2)
    with Session(db) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id,
                                         Step.kind == "rehabilitation_route")).one()
        assert step.agency_id is not None
        return step.agency_id


def test_pick_least_loaded_and_nearest_rules() -> None:
    cands = [Candidate("a", "Гурьевский район", 3), Candidate("b", None, 1),
             Candidate("c", "Зеленоградский район", 1)]
    assert pick(cands, ProviderRule.least_loaded, person_district=None) == "b"
    assert pick(cands, ProviderRule.nearest, person_district=" гурьевский  РАЙОН") == "a"
    # no agency in the person's district (or none known): the least loaded of all
    assert pick(cands, ProviderRule.nearest, person_district="Светлогорский район") == "b"
    assert pick(cands, ProviderRule.nearest, person_district=None) == "b"


def test_least_loaded_by_default_spreads_by_open_requests(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    got = [_provider_of(db, clock, cfg, p) for p in seeded]
    # tie at 0 -> the first by id; then the one with fewer open requests
    assert got == ["psu39a", "psu39b", "psu39a"]


def test_the_persons_choice_is_followed(db: Engine, clock: DbClock, cfg: EngineConfig,
                                        seeded: list[Person]) -> None:
    with Session(db) as s:
        record_choice(s, person_id=seeded[0].id, role="provider", agency_id="psu39b",
                      now=NOW, actor="staff:coord39")
        s.commit()
    assert _provider_of(db, clock, cfg, seeded[0]) == "psu39b"
    [rec] = audits(db, entity="person", action="provider_chosen")
    assert rec.after == {"role": "provider", "agency_id": "psu39b"}


@pytest.mark.parametrize(("agency_id", "rule"), [
    ("mz39", "agency_id: mz39 is a health participant, not provider"),
    ("psu16x", "agency_id: psu16x serves region 16, the person lives in region 39"),
])
def test_a_choice_of_another_role_or_region_is_refused(
        db: Engine, seeded: list[Person], agency_id: str, rule: str) -> None:
    with Session(db) as s:
        add_agency(s, id="psu16x", name="ЦСО Татарстана", short_name="ЦСО", role="provider",
                   region="16")
        s.commit()
    with Session(db) as s, pytest.raises(EngineError) as err:
        record_choice(s, person_id=seeded[0].id, role="provider", agency_id=agency_id,
                      now=NOW, actor="staff:coord39")
    assert str(err.value).startswith(rule)
    with Session(db) as s:
        assert s.exec(select(ProviderChoice)).all() == []


def test_nearest_picks_the_agency_of_the_persons_district(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    with Session(db) as s:
        agency = s.get(Agency, "psu39b")
        assert agency is not None
        agency.district = "Гурьевский район"
        s.add(agency)
        s.add(PersonDetail(
            person_id=seeded[0].id, sex="female", identity_document={},
            registration_address={"region_code": "39", "district": "Гурьевский район"},
            region_code="39", preferred_channel="post", updated_at=NOW))
        s.commit()
    nearest = EngineConfig(**{**cfg.__dict__, "provider_rules": (("39", "nearest"),)})
    # least loaded would give psu39a (tie, first by id); nearest gives the district's one
    assert _provider_of(db, clock, nearest, seeded[0]) == "psu39b"
    assert _provider_of(db, clock, cfg, seeded[1]) == "psu39a"
