"""Staff tokens expire, can be revoked and rotated (``rehab staff revoke|rotate``); an expired
or revoked token gets 401."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from engine.errors import EngineError
from engine.infra.settings import get_settings
from engine.staff.accounts import create_staff, revoke_token, rotate_token, staff_by_token
from models.audit import AuditEvent
from models.staff import StaffRole, StaffUser
from models.types import utcnow

runner = CliRunner()
ESCALATIONS = "/api/supervisor/escalations"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _add(db: Engine, ttl_days: int = 30) -> str:
    with Session(db) as s:
        _user, token = create_staff(s, id="sup-t", display_name="Sup", role=StaffRole.supervisor,
                                    region="39", token_ttl_days=ttl_days)
        s.commit()
    return token


def test_an_expired_token_gets_401(db: Engine, client: TestClient) -> None:
    token = _add(db, ttl_days=30)
    with Session(db) as s:
        user = s.get(StaffUser, "sup-t")
        assert user is not None and user.token_expires_at is not None
        assert timedelta(days=29) < user.token_expires_at - utcnow() <= timedelta(days=30)
    assert client.get(ESCALATIONS, headers=_bearer(token)).status_code == 200
    with Session(db) as s:
        user = s.get(StaffUser, "sup-t")
        assert user is not None
        user.token_expires_at = utcnow() - timedelta(seconds=1)
        s.add(user)
        s.commit()
    r = client.get(ESCALATIONS, headers=_bearer(token))
    assert r.status_code == 401 and "expired or revoked" in r.json()["detail"]
    with pytest.raises(EngineError, match="token_ttl_days: must be at least 1"):
        with Session(db) as s:
            rotate_token(s, id="sup-t", token_ttl_days=0)


def test_revoke_and_rotate(db: Engine, client: TestClient) -> None:
    old = _add(db)
    with Session(db) as s:
        _user, new = rotate_token(s, id="sup-t", actor="test")
        s.commit()
    assert client.get(ESCALATIONS, headers=_bearer(old)).status_code == 401
    assert client.get(ESCALATIONS, headers=_bearer(new)).status_code == 200
    with Session(db) as s:
        revoke_token(s, id="sup-t", actor="test")
        s.commit()
        assert staff_by_token(s, new) is None
        with pytest.raises(EngineError, match="revoked already"):
            revoke_token(s, id="sup-t")
        with pytest.raises(EngineError, match="id: no staff user 'nobody'"):
            revoke_token(s, id="nobody")
        actions = [e.action for e in s.query(AuditEvent).filter(
            AuditEvent.entity == "staff", AuditEvent.entity_id == "sup-t")]
    assert client.get(ESCALATIONS, headers=_bearer(new)).status_code == 401
    assert actions == ["created", "token_rotated", "token_revoked"]


@pytest.fixture
def cli_db(db_url: str, db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    monkeypatch.setenv("REHAB_STAFF_TOKEN_TTL_DAYS", "7")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def test_rehab_staff_revoke_and_rotate(cli_db: Engine) -> None:
    added = runner.invoke(app, ["staff", "add", "--id", "coord-x", "--name", "X",
                                "--role", "coordinator"])
    assert added.exit_code == 0, added.output
    assert "token expires at" in added.output
    rotated = runner.invoke(app, ["staff", "rotate", "--id", "coord-x"])
    assert rotated.exit_code == 0, rotated.output
    match = re.search(r"new token \(shown once\): (\S+)", rotated.output)
    assert match
    with Session(cli_db) as s:
        user = staff_by_token(s, match.group(1))
        assert user is not None and user.token_expires_at is not None
        assert user.token_expires_at - utcnow() <= timedelta(days=7)
    revoked = runner.invoke(app, ["staff", "revoke", "--id", "coord-x"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with Session(cli_db) as s:
        assert staff_by_token(s, match.group(1)) is None
    again = runner.invoke(app, ["staff", "revoke", "--id", "coord-x"])
    assert again.exit_code == 2 and "revoked already" in again.output
