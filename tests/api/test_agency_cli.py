"""Agency onboarding and secret rotation: ``rehab agency ...`` on engine/agencies/participants.py.

Secrets are ``whsec_`` + base64 of 32 random bytes, printed once, never in the audit; every
change is an audit record; production refuses the demo's public secrets.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli.main import app
from engine.agencies import participants as ag
from engine.agencies.participants import derive_demo_secret
from engine.infra.settings import get_settings
from models.agencies import Agency, AgencyRole
from models.audit import AuditEvent
from sim.seed import DemoOnlyError, make_secret, seed_agencies

runner = CliRunner()
SECRET_RE = re.compile(r"(whsec_[A-Za-z0-9+/=]+)")


@pytest.fixture
def cli_db(db_url: str, db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The CLI's settings point at the test database."""
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def rehab(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["agency", *args])
    return result.exit_code, result.output


def agency(db: Engine, agency_id: str) -> Agency:
    with Session(db) as s:
        row = s.get(Agency, agency_id)
        assert row is not None
        return row


def rows(db: Engine) -> list[tuple[str, str | None, str, str | None]]:
    with Session(db) as s:
        return [(a.id, a.endpoint_url, a.secret_current, a.secret_previous)
                for a in ag.list_agencies(s)]


def holders(db: Engine) -> list[str]:
    with Session(db) as s:
        return ag.demo_secret_holders(s)


def audit_of(db: Engine, agency_id: str) -> list[AuditEvent]:
    with Session(db) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.entity == "agency",
                                                    AuditEvent.entity_id == agency_id)
                           .order_by(col(AuditEvent.id))))


def test_onboarding_and_rotation(cli_db: Engine) -> None:
    code, out = rehab("add", "--id", "clinic39", "--name", "ГБУЗ «Клиника»",
                      "--short-name", "Клиника", "--role", "health", "--region", "39")
    assert code == 0, out
    (first,) = SECRET_RE.findall(out)
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    row = agency(cli_db, "clinic39")
    assert row.secret_current == first and row.secret_previous is None
    assert row.endpoint_url is None and row.role is AgencyRole.health

    code, out = rehab("list")
    assert code == 0 and "clinic39" in out and ag.fingerprint(first) in out
    assert "whsec_" not in out
    code, out = rehab("list", "--json")
    assert json.loads(out)[0]["secret_fingerprint"] == ag.fingerprint(first)

    code, out = rehab("set-endpoint", "clinic39", "https://clinic.example/requests")
    assert code == 0, out
    assert agency(cli_db, "clinic39").endpoint_url == "https://clinic.example/requests"

    code, out = rehab("rotate-secret", "clinic39")
    assert code == 0, out
    (second,) = SECRET_RE.findall(out)
    row = agency(cli_db, "clinic39")
    assert (row.secret_current, row.secret_previous) == (second, first) and second != first

    code, out = rehab("rotate-secret", "clinic39")  # a rotation is in progress
    assert code == 2 and "secret_previous:" in out
    assert agency(cli_db, "clinic39").secret_current == second

    code, out = rehab("retire-previous", "clinic39")
    assert code == 0, out
    row = agency(cli_db, "clinic39")
    assert (row.secret_current, row.secret_previous) == (second, None)
    code, out = rehab("retire-previous", "clinic39")
    assert code == 2 and "secret_previous:" in out

    code, out = rehab("set-endpoint", "clinic39", "--inbox")
    assert code == 0 and agency(cli_db, "clinic39").endpoint_url is None

    events = audit_of(cli_db, "clinic39")
    assert [e.action for e in events] == ["created", "endpoint_changed", "secret_rotated",
                                          "secret_previous_retired", "endpoint_changed"]
    assert all(e.actor == "cli:agency" for e in events)
    dumped = json.dumps([e.model_dump(mode="json") for e in events])
    assert first not in dumped and second not in dumped  # fingerprints only
    assert ag.fingerprint(second) in dumped


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["add", "--id", "Bad Id", "--name", "N", "--short-name", "N", "--role", "health"], "id"),
        (["add", "--id", "x39", "--name", " ", "--short-name", "N", "--role", "health"], "name"),
        (["add", "--id", "x39", "--name", "N", "--short-name", "N", "--role", "health",
          "--region", "99"], "region"),
        (["add", "--id", "x39", "--name", "N", "--short-name", "N", "--role", "health",
          "--endpoint", "ftp://x.example"], "endpoint_url"),
        (["add", "--id", "x39", "--name", "N", "--short-name", "N", "--role", "health",
          "--endpoint", "https://u:p@x.example"], "endpoint_url"),
        (["add", "--id", "msp39", "--name", "N", "--short-name", "N", "--role", "health"], "id"),
        (["set-endpoint", "msp39", "not a url"], "endpoint_url"),
        (["set-endpoint", "nobody", "https://x.example"], "agency_id"),
        (["set-endpoint", "msp39"], "url"),
        (["rotate-secret", "nobody"], "agency_id"),
        (["retire-previous", "nobody"], "agency_id"),
    ],
)
def test_refused_changes_name_the_field_and_change_nothing(
        cli_db: Engine, args: list[str], field: str) -> None:
    with Session(cli_db) as s:
        seed_agencies(s)
        s.commit()
    before = rows(cli_db)
    code, out = rehab(*args)
    assert code == 2, out
    assert f"{field}:" in out, out
    assert rows(cli_db) == before
    with Session(cli_db) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.entity == "agency")).first() is None


def test_rotating_a_demo_secret_does_not_keep_it(cli_db: Engine) -> None:
    with Session(cli_db) as s:
        seed_agencies(s)
        s.commit()
    assert holders(cli_db)[:1] == ["mkt39"]
    code, out = rehab("rotate-secret", "msp39")
    assert code == 0 and "no longer valid" in out
    row = agency(cli_db, "msp39")
    assert row.secret_previous is None and not ag.is_demo_secret("msp39", row.secret_current)
    assert "msp39" not in holders(cli_db)
    (event,) = audit_of(cli_db, "msp39")
    assert event.after is not None and event.after["previous_kept"] is False


def test_refuse_demo_secrets_names_the_agencies(db: Engine) -> None:
    with Session(db) as s:
        seed_agencies(s)
        s.commit()
    with pytest.raises(ag.DemoSecretError, match=r"^agency secrets: mkt39, .*rotate-secret"):
        ag.refuse_demo_secrets(db)
    with Session(db) as s:
        for a in ag.list_agencies(s):
            ag.rotate_secret(s, a.id)
        s.commit()
    ag.refuse_demo_secrets(db)  # nothing left to refuse


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in {"REHAB_ENVIRONMENT": "production", "REHAB_ALLOW_CLOCK_CONTROL": "false",
                 "REHAB_ADMIN_TOKEN": "a-real-admin-token",
                 "REHAB_PUBLIC_BASE_URL": "https://rehab.example",
                 "REHAB_DATABASE_URL": "postgresql+psycopg://rehab@db/rehab"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_demo_secrets_are_refused_in_production(production_env: None, db: Engine) -> None:
    with pytest.raises(DemoOnlyError, match="^make_secret:"):
        make_secret("msp39")
    with Session(db) as s, pytest.raises(DemoOnlyError, match="^seed_agencies:"):
        seed_agencies(s)
    # recognising one stays possible (to refuse it)
    assert ag.is_demo_secret("msp39", derive_demo_secret("msp39"))
    assert not ag.is_demo_secret("msp39", ag.new_secret())


def test_new_secrets_are_random_and_well_formed() -> None:
    a, b = ag.new_secret(), ag.new_secret()
    assert a != b and a.startswith("whsec_") and len(base64.b64decode(a[6:])) == 32
