"""The demo's persons' files (issue 10): for each synthetic person an ИПРА extract with
limitations and measures, a consent, and applications of the 363н form — the supported-living
one that forms the route, and for some persons an application of another kind that is
refused (social employment without the degree-3 work limitation, early help for an adult)
or granted without a route (accompaniment asked to stop). Deterministic per seed; never
real persons.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from engine.persons.applications import register_full_application
from engine.persons.ipra_import import import_ipra
from engine.routes.transitions import EngineConfig
from models.ages import anniversary
from models.persons import Person

ACTOR = "demo:coordinator"
OTHER_KINDS = ("social_employment", "early_help", "accompaniment_stop")
"""The second application of every person but each fourth (by position): refused, refused,
granted without a route."""

_OPERATOR = {"name": "Министерство социальной политики Калининградской области",
             "inn": "3906000000", "address": "г. Калининград, ул. Примерная, 1"}


@dataclass(frozen=True)
class FileOutcome:
    applications: int
    eligible: int
    route_id: str | None


def _name(person: Person) -> dict[str, str]:
    parts = person.full_name.replace("(синтетический)", "").split()
    return {"last_name": parts[0], "first_name": parts[1] if len(parts) > 1 else "Демо"}


def _rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


def ipra_extract(person: Person, index: int, *, seed: int, today: date) -> dict[str, Any]:
    """A ФГИС ФРИ extract (docs/ipra.md) for the person: degree 2–3 in self-care (supported
    living needs help of others, 000 п.10), work degree 1–2 (not social employment)."""
    rng = _rng(seed, index)
    issued = today - timedelta(days=rng.randint(20, 300))
    until = issued + timedelta(days=730)
    measures = [
        {"direction": "social", "title": "Социально-бытовая адаптация",
         "executor": {"role": "social_policy"},
         "due": (issued + timedelta(days=rng.randint(200, 700))).isoformat()},
        {"direction": "medical", "title": "Медицинская реабилитация",
         "executor": {"role": "health"},
         "due": (issued + timedelta(days=rng.randint(100, 700))).isoformat()},
    ]
    if rng.random() < 0.5:
        measures.append({"direction": "technical_aids", "title": "Трость опорная",
                         "executor": {"role": "sfr"}, "funding": "federal",
                         "due": (issued + timedelta(days=rng.randint(30, 300))).isoformat()})
    return {
        "format": "fri-ipra-extract/1",
        "extract": {"source": "ФГИС ФРИ", "extract_id": f"demo-{seed}-{index:05d}",
                    "generated_at": f"{issued.isoformat()}T09:00:00+02:00"},
        "ipra": {
            "number": f"{index + 1}.5.39/{issued.year}", "issued_on": issued.isoformat(),
            "bureau": {"code": "39.5", "name": "Бюро МСЭ № 5 (демо)", "region_code": "39"},
            "kind": "adult",
            "subject": {"snils": person.snils, "full_name": _name(person),
                        "birth_date": person.birth_date.isoformat(),
                        "sex": "female" if index % 2 else "male"},
            "valid_from": issued.isoformat(), "term": "until_date",
            "valid_until": until.isoformat(),
            "limitations": [
                {"category": "self_care", "degree": rng.randint(2, 3)},
                {"category": "movement", "degree": rng.randint(1, 3)},
                {"category": "communication", "degree": rng.randint(1, 2)},
                {"category": "work", "degree": rng.randint(1, 2)},
            ],
            "measures": measures,
        },
    }


def consent(person: Person, index: int, at: datetime) -> dict[str, Any]:
    """The person's own consent to every purpose (152-ФЗ art. 9 ч.4)."""
    return {
        "consent_id": f"cn_demo_{index:05d}", "version": 1, "subject_snils": person.snils,
        "subject_name": _name(person), "given_by": {"kind": "person"},
        "purposes": ["accompaniment", "supported_living", "social_employment", "early_help"],
        "data_categories": ["identity", "snils", "contacts", "disability", "ipra"],
        "operator": _OPERATOR, "channel": "paper", "signature": "handwritten",
        "given_at": at.isoformat(),
    }


def application(person: Person, index: int, at: datetime, kind: str, *,
                seed: int) -> dict[str, Any]:
    """An application of the 363н form registered on paper at ``at``."""
    rng = _rng(seed, index)
    born = person.birth_date
    adult = anniversary(born, 18)
    established = min(adult + timedelta(days=rng.randint(0, 3000)), at.date() - timedelta(days=60))
    request: dict[str, Any] = {"kind": kind, "addressee": "Министерство социальной политики "
                                                          "Калининградской области"}
    if kind == "social_employment":
        request["preferences"] = "работа в мастерской рядом с домом"
    elif kind == "early_help":
        request["early_help_grounds"] = ["developmental_limitation"]
    elif kind == "accompaniment_stop":
        request = {"kind": "accompaniment", "addressee": "ОСФР по Калининградской области",
                   "action": "stop", "participant": "sfr"}
    return {
        "submission": {"channel": "paper", "signature": "handwritten",
                       "registered_at": at.isoformat(), "registered_by": "demo"},
        "request": request,
        "applicant": {"kind": "person"},
        "person": {
            "full_name": _name(person), "birth_date": born.isoformat(),
            "sex": "female" if index % 2 else "male", "snils": person.snils,
            "identity_document": {"kind": "passport_rf", "series": f"27{rng.randint(10, 99)}",
                                  "number": f"{rng.randint(0, 999_999):06d}",
                                  "issued_on": anniversary(born, 14).isoformat(),
                                  "issued_by": "УМВД России по Калининградской области",
                                  "issuer_code": "390-001"},
            "registration_address": {"postal_code": "236000", "region_code": "39",
                                     "region": "Калининградская область",
                                     "locality": "Калининград", "street": "ул. Демо",
                                     "house": str(index + 1)},
            "phones": [{"kind": "mobile", "number": f"+79110{index:06d}"}],
            "email": f"demo{index}@example.org",
            "preferred_channel": "email",
        },
        "disability": {"group": "II" if rng.random() < 0.5 else "III",
                       "cause": "общее заболевание",
                       "established_on": established.isoformat(), "indefinite": True},
        "consent_confirmed": True,
    }


def register_person_file(session: Session, cfg: EngineConfig, person: Person, index: int, *,
                         at: datetime, seed: int) -> FileOutcome:
    """Import the person's ИПРА, register their supported-living application with consent
    (it forms the route), and for three persons in four a second application of another
    kind. The caller commits (one transaction per person's file)."""
    import_ipra(session, text=json.dumps(ipra_extract(person, index, seed=seed,
                                                      today=at.date()), ensure_ascii=False),
                now=at, actor=ACTOR)
    main = register_full_application(
        session, cfg, raw=application(person, index, at, "supported_living", seed=seed),
        consent=consent(person, index, at), now=at, actor=ACTOR)
    apps, eligible = 1, int(main.decision.eligible)
    if index % 4:
        kind = OTHER_KINDS[(index % 4) - 1]
        other = register_full_application(
            session, cfg, raw=application(person, index, at, kind, seed=seed), now=at,
            actor=ACTOR)
        assert other.route is None  # refused, or granted without a route
        apps, eligible = 2, eligible + int(other.decision.eligible)
    return FileOutcome(apps, eligible, main.route.id if main.route else None)
