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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.agencies.providers import record_choice
from engine.persons.applications import register_full_application
from engine.persons.ipra_import import import_ipra
from engine.routes.branches import branches_of, pending_branches, record_branch_decision
from engine.routes.transitions import EngineConfig
from models.ages import age_on, anniversary
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.snils import format_snils
from sim.seed import agencies_by_role

ACTOR = "demo:coordinator"
ROUTE_KINDS = ("supported_living", "social_employment", "early_help", "accompaniment")
"""The route each person's file forms, by position (index % 4): all four kinds of route
(000; 001 Регламент; 003; 004). Early help is applied for by the person for their child
under three (003 п.4), whose route it is."""
OTHER_KINDS = ("", "early_help", "social_employment", "accompaniment_stop")
"""The second application of the person (by index % 4): none; early help for an adult and
social employment without the degree-3 work limitation (both refused); asking
accompaniment to stop (granted, no route)."""

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


def _due(issued: date, days: int, until: date) -> str:
    """A measure's deadline ``days`` after the ИПРА's issue, within its term."""
    return min(issued + timedelta(days=days), until).isoformat()


def ipra_extract(person: Person, index: int, *, seed: int, today: date,
                 social_employment: bool = False,
                 valid_until: date | None = None) -> dict[str, Any]:
    """A ФГИС ФРИ extract (docs/ipra.md) for the person: degree 2–3 in self-care (supported
    living needs help of others, 000 п.10; accompaniment, 004 п.1), work degree 1–2 (not
    social employment) — or, with ``social_employment``, degree 3 and simple work only with
    significant help (001 Регламент п.3). ``valid_until``: a shorter term than two years (the
    demo's ИПРА that expires during the run, 004 п.13 а)."""
    rng = _rng(seed, index)
    issued = today - timedelta(days=rng.randint(20, 300))
    until = valid_until or issued + timedelta(days=730)
    measures = [
        {"direction": "social", "title": "Социально-бытовая адаптация",
         "executor": {"role": "social_policy"},
         "due": _due(issued, rng.randint(200, 700), until)},
        {"direction": "medical", "title": "Медицинская реабилитация",
         "executor": {"role": "health"},
         "due": _due(issued, rng.randint(100, 700), until)},
    ]
    if rng.random() < 0.5:
        measures.append({"direction": "technical_aids", "title": "Трость опорная",
                         "executor": {"role": "sfr"}, "funding": "federal",
                         "due": _due(issued, rng.randint(30, 300), until)})
    doc: dict[str, Any] = {
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
            **({"work_recommendation": "simple_work_with_significant_help"}
               if social_employment else {}),
        },
    }
    if social_employment:
        for lim in doc["ipra"]["limitations"]:
            if lim["category"] == "work":
                lim["degree"] = 3
    return doc


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
    elif kind == "accompaniment":
        request = {"kind": "accompaniment", "addressee": "ГБУ КО «Реабилитационный центр»",
                   "action": "provide", "participant": "rehabilitation_organisation"}
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


def child_snils(seed: int, index: int) -> str:
    """A valid synthetic SNILS for the person's child (never a real one's: the numbers from
    001-001-998 down are outside the check, 100-… up are drawn from the seed)."""
    rng = random.Random(f"child:{seed}:{index}")
    first = f"{rng.randint(100, 899):03d}{rng.randint(0, 999_999):06d}"
    return format_snils(first)


def child_application(person: Person, index: int, at: datetime, *,
                      seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Early help (003 п.4, п.9) for the person's child under three, applied for by the
    person as the child's legal representative (a parent: the birth certificate, Family
    Code art. 64); with the representative's consent (152-ФЗ art. 9 ч.6). (form, consent)"""
    rng = _rng(seed, index)
    born = at.date() - timedelta(days=rng.randint(200, 900))
    snils = child_snils(seed, index)
    name = {"last_name": _name(person)["last_name"], "first_name": "Малыш"}
    authority = {"kind": "birth_certificate", "number": f"{rng.randint(0, 999_999):06d}",
                 "issued_on": (born + timedelta(days=10)).isoformat(),
                 "issued_by": "Отдел ЗАГС Калининграда"}
    form = application(person, index, at, "early_help", seed=seed)
    form["applicant"] = {
        "kind": "legal_representative", "full_name": _name(person),
        "authority_document": authority,
        "identity_document": form["person"]["identity_document"],
        "address": form["person"]["registration_address"]}
    form["person"] = {**form["person"], "full_name": name, "birth_date": born.isoformat(),
                      "snils": snils,
                      "identity_document": {"kind": "birth_certificate", "series": "I-РЕ",
                                            "number": authority["number"],
                                            "issued_on": authority["issued_on"],
                                            "issued_by": authority["issued_by"]}}
    form["disability"] = None
    agreed = consent(person, index, at)
    agreed.update(consent_id=f"cn_demo_child_{index:05d}", subject_snils=snils,
                  subject_name=name, data_categories=[*agreed["data_categories"],
                                                      "representative"],
                  given_by={"kind": "legal_representative", "full_name": _name(person),
                            "authority_document": authority})
    return form, agreed


def choose_providers(session: Session, person: Person, index: int, *, at: datetime,
                     seed: int, whose: str = "") -> dict[str, str]:
    """The person's choice of provider (001 Регламент п.15 пп.2) for each role with more
    than one agency in their region, drawn from the seed — so which agency serves a step
    never depends on the order the worker applies answers in (the region's rule
    ``least_loaded`` counts open requests). ``whose``: another draw for another person of
    the file (the child). Returns role → agency id."""
    rng = random.Random(f"provider:{seed}:{index}{whose}")
    chosen: dict[str, str] = {}
    for role, agencies in sorted(agencies_by_role(session, person.region).items()):
        active = sorted(a.id for a in agencies if a.active)
        if len(active) > 1:
            chosen[role] = rng.choice(active)
            record_choice(session, person_id=person.id, role=role, agency_id=chosen[role],
                          now=at, actor=ACTOR)
    return chosen


def route_kind_of(person: Person, index: int, on: date) -> str:
    """The route the person's file forms: ``ROUTE_KINDS[index % 4]``, except social
    employment past working age (001 Регламент п.3), which is supported living instead."""
    kind = ROUTE_KINDS[index % 4]
    if kind == "social_employment" and age_on(person.birth_date, on) >= 50:
        return "supported_living"
    return kind


def register_person_file(session: Session, cfg: EngineConfig, person: Person, index: int, *,
                         at: datetime, seed: int, ipra_valid_until: date | None = None,
                         template_versions: Mapping[str, int] | None = None) -> FileOutcome:
    """Import the person's ИПРА (``ipra_valid_until``: a short term), record their choice of
    providers (``choose_providers``) and register the application that forms a route —
    ``ROUTE_KINDS[index % 4]`` (early help: for their child) — with consent, on the
    ``template_versions`` published (default: the newest), and the second application
    ``OTHER_KINDS[index % 4]``. The caller commits (one transaction per person's file)."""
    kind = route_kind_of(person, index, at.date())
    import_ipra(session, text=json.dumps(ipra_extract(
        person, index, seed=seed, today=at.date(),
        social_employment=kind == "social_employment", valid_until=ipra_valid_until),
        ensure_ascii=False), now=at, actor=ACTOR)
    choose_providers(session, person, index, at=at, seed=seed)
    if kind == "early_help":
        raw, agreed = child_application(person, index, at, seed=seed)
        main = register_full_application(session, cfg, raw=raw, consent=agreed, now=at,
                                         actor=ACTOR, template_versions=template_versions)
    else:
        main = register_full_application(
            session, cfg, raw=application(person, index, at, kind, seed=seed),
            consent=consent(person, index, at), now=at, actor=ACTOR,
            template_versions=template_versions)
    assert main.route is not None, main.decision
    if main.route.person_id != person.id:  # the child's route: the parent chooses for it;
        # its provider steps wait for earlier ones (003), so the choice is on file in time
        child = session.get(Person, main.route.person_id)
        assert child is not None
        choose_providers(session, child, index, at=at, seed=seed, whose=":child")
    apps, eligible = 1, int(main.decision.eligible)
    other_kind = OTHER_KINDS[index % 4]
    if other_kind:
        # the person's own consent is on file unless the route was their child's
        other = register_full_application(
            session, cfg, raw=application(person, index, at, other_kind, seed=seed),
            consent=consent(person, index, at) if kind == "early_help" else None, now=at,
            actor=ACTOR)
        assert other.route is None  # refused, or granted without a route
        apps, eligible = 2, eligible + int(other.decision.eligible)
    return FileOutcome(apps, eligible, main.route.id if main.route else None)


def branch_choice(seed: int, index: int) -> list[str]:
    """The person's choice of supported-living branches (000 п.13–15), drawn from the seed:
    education or not, then employment, social employment or neither (alternatives)."""
    rng = random.Random(f"branches:{seed}:{index}")
    chosen = ["education"] if rng.random() < 0.5 else []
    return chosen + [["employment"], ["social_employment"], []][rng.randrange(3)]


def decide_branches(engine: Engine, cfg: EngineConfig, index: Mapping[str, int], *,
                    now: datetime, seed: int) -> int:
    """The demo coordinator records the branch decision of every active route that waits for
    one and whose assessment step is answered (000 п.10: the assessment's conclusion; the
    person's choice: ``branch_choice``), one transaction per route. Returns how many."""
    with Session(engine) as s:
        routes = list(s.exec(select(Route).where(Route.status == RouteStatus.active,
                                                 col(Route.template_version) >= 1)
                             .order_by(col(Route.registered_at), col(Route.id))))
    done = 0
    for route in routes:
        spec = branches_of(route)
        if spec is None or spec.branching is None or not pending_branches(route) \
                or route.person_id not in index:
            continue
        with Session(engine) as s:
            after = s.exec(select(Step).where(Step.route_id == route.id,
                                              Step.kind == spec.branching.after)).first()
            if after is None or not after.status.terminal \
                    or after.status is StepStatus.cancelled:
                continue
            chosen = [b for b in branch_choice(seed, index[route.person_id])
                      if b in spec.branches]
            record_branch_decision(
                s, cfg, route_id=route.id, chosen=chosen, now=now, actor=ACTOR,
                assessment="Нуждается в сопровождаемом проживании (заключение оценки "
                           "нуждаемости); направления — по выбору инвалида")
            s.commit()
            done += 1
    return done
