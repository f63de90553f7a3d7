"""The demo's data: the Kaliningrad region's participants, synthetic persons and synthetic
applications (for the demo, the tests and the benchmark).

The participants follow 298-п Порядок п.3 / Регламент п.4 and 363н п.3. Persons made here
are generated (``synthetic=True``), never real.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from engine.agencies.participants import derive_demo_secret
from engine.infra.settings import get_settings
from models.agencies import Agency, AgencyRole
from models.persons import Person, snils_check_number
from models.template_files import templates as data_templates
from models.types import new_id

# (id, short name, Russian name, role)
KALININGRAD_AGENCIES: list[tuple[str, str, str, AgencyRole]] = [
    ("msp39", "Минсоцполитики", "Министерство социальной политики Калининградской области",
     AgencyRole.social_policy),
    ("mz39", "Минздрав", "Министерство здравоохранения Калининградской области",
     AgencyRole.health),
    ("mo39", "Минобразования", "Министерство образования Калининградской области",
     AgencyRole.education),
    ("msport39", "Минспорт", "Министерство спорта Калининградской области", AgencyRole.sport),
    ("mkt39", "Минкультуры", "Министерство по культуре и туризму Калининградской области",
     AgencyRole.culture),
    ("mse39", "МСЭ", "Главное бюро медико-социальной экспертизы по Калининградской области",
     AgencyRole.mse),
    ("sfr39", "СФР", "Отделение Социального фонда России по Калининградской области",
     AgencyRole.sfr),
    ("psu39a", "ЦСО «Доверие»", "ГБУ СО КО «Центр социального обслуживания «Доверие»",
     AgencyRole.provider),
    ("psu39b", "ЦСО «Надежда»", "ГБУ СО КО «Центр социального обслуживания «Надежда»",
     AgencyRole.provider),
]




class DemoOnlyError(RuntimeError):
    """Demo data asked for in production."""


def refuse_in_production(what: str) -> None:
    """Raise DemoOnlyError when the settings say production (REHAB_ENVIRONMENT)."""
    if get_settings().environment == "production":
        raise DemoOnlyError(f"{what}: demo data (public secrets) is refused in production; "
                            "register agencies with `rehab agency add`")


def make_secret(seed: str) -> str:
    """A deterministic Standard Webhooks secret for a seed (demo and tests only: anyone can
    derive it, so production refuses it; real secrets come from ``rehab agency``)."""
    refuse_in_production("make_secret")
    return derive_demo_secret(seed)


def seed_agencies(
    session: Session, *, region: str = "39", endpoints: dict[str, str | None] | None = None,
) -> list[Agency]:
    """Insert (or update the endpoints of) the region's participants, with demo secrets
    (demo and tests only: refused in production)."""
    refuse_in_production("seed_agencies")
    out: list[Agency] = []
    for aid, short, name, role in KALININGRAD_AGENCIES:
        agency_id = aid if region == "39" else f"{aid[:-2]}{region}"
        row = session.get(Agency, agency_id)
        if row is None:
            row = Agency(id=agency_id, name=name, short_name=short, role=role, region=region,
                         secret_current=make_secret(agency_id))
        if endpoints is not None and agency_id in endpoints:
            row.endpoint_url = endpoints[agency_id]
        session.add(row)
        out.append(row)
    session.flush()
    return out


FIRST = ["Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Анна", "Сергей", "Елена"]
LAST = ["Синтетиков", "Примерова", "Тестов", "Образцова", "Демонов", "Выдумкина"]


def synthetic_snils(rng: random.Random) -> str:
    """A SNILS with a valid check number (random, above 001-001-998)."""
    body = f"{rng.randint(2_000_000, 999_999_999):09d}"
    return f"{body[0:3]}-{body[3:6]}-{body[6:9]} {snils_check_number(body):02d}"


def make_persons(session: Session, n: int, *, region: str = "39", seed: int = 7) -> list[Person]:
    """``n`` generated persons (never real). A SNILS is one person's (``person.snils`` is
    unique): a generated SNILS that another person holds is drawn again. The same seed on
    the same database gives the same persons."""
    rng = random.Random(seed)
    drawn = [(f"{rng.choice(LAST)} {rng.choice(FIRST)} (синтетический)", synthetic_snils(rng),
              date(rng.randint(1960, 2006), rng.randint(1, 12), rng.randint(1, 28)))
             for _ in range(n)]
    taken: set[str] = set()
    snils_list = [d[1] for d in drawn]
    for i in range(0, len(snils_list), 500):
        taken.update(session.exec(select(Person.snils).where(
            col(Person.snils).in_(snils_list[i:i + 500]))))
    people = []
    for full_name, snils, birth in drawn:
        while snils in taken:  # held already (rare): draw another one not in the database
            snils = synthetic_snils(rng)
            with session.no_autoflush:
                if session.exec(select(Person.id).where(Person.snils == snils)).first():
                    taken.add(snils)
        taken.add(snils)
        p = Person(id=new_id("pn"), full_name=full_name, snils=snils, birth_date=birth,
                   region=region, synthetic=True)
        session.add(p)
        people.append(p)
    session.flush()
    return people


def agencies_by_role(session: Session, region: str) -> dict[str, list[Agency]]:
    out: dict[str, list[Agency]] = {}
    for a in session.exec(select(Agency).where(Agency.region == region)):
        out.setdefault(a.role.value, []).append(a)
    return out


def example_lines(n: int, *, seed: int = 11, region: str = "39",
                  templates: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``n`` generated applications (synthetic persons, never real) for the benchmark:
    distinct valid SNILS, the ``templates`` (default: all) in turn."""
    rng = random.Random(seed)
    codes = list(templates) or sorted(data_templates())
    seen: set[str] = set()
    out = []
    for i in range(n):
        snils = synthetic_snils(rng)
        while snils in seen:
            snils = synthetic_snils(rng)
        seen.add(snils)
        out.append({"full_name": f"{rng.choice(LAST)} {rng.choice(FIRST)} (синтетический)",
                    "snils": snils,
                    "birth_date": date(rng.randint(1960, 2006), rng.randint(1, 12),
                                       rng.randint(1, 28)).isoformat(),
                    "region": region, "template": codes[i % len(codes)]})
    return out
