"""The API contract (issue 8): a valid, resolvable OpenAPI document that states the rules
the server enforces and the error codes it returns; integer parameters refused past their
range with a 4xx, never a 5xx."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.staff.accounts import create_staff
from sim.seed import seed_agencies

ADMIN = "adm-3e9a61c0d2"


@pytest.fixture
def api(db: Engine, clock: DbClock) -> tuple[TestClient, dict[str, str]]:
    with Session(db) as s:
        seed_agencies(s)
        _, sup = create_staff(s, id="sup39", display_name="Р", role="supervisor", region="39")
        s.commit()
    settings = Settings(environment="test", prefect_mirror=False, admin_token=ADMIN)
    return TestClient(create_app(db, settings=settings, clock=clock)), {"sup": sup}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref" and isinstance(v, str)] + [
            r for k, v in node.items() if k != "$ref" for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_reference_of_the_document_resolves(api: tuple[TestClient, dict[str, str]]) -> None:
    spec = api[0].get("/openapi.json").json()
    refs = _refs(spec)
    assert refs and not [r for r in refs if "$defs" in r]
    for ref in refs:
        _resolve(spec, ref)
        # each referenced schema is itself a valid JSON Schema
        jsonschema.Draft202012Validator.check_schema(_resolve(spec, ref))


def test_errors_are_documented_in_the_shape_we_send(
        api: tuple[TestClient, dict[str, str]]) -> None:
    spec = api[0].get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["ValidationErrorBody"]["required"]) == {"detail"}
    ops = {(path, method): op for path, item in spec["paths"].items()
           for method, op in item.items()}
    for (path, method), op in ops.items():
        if "422" in op["responses"]:
            ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ValidationErrorBody"), (path, method)
    webhook = ops[("/webhooks/agencies/{agency_id}", "post")]
    assert {"200", "400", "401", "404", "409", "413", "415", "422"} <= set(webhook["responses"])
    assert {"401", "403", "404", "409", "422"} <= set(
        ops[("/api/supervisor/steps/{step_id}/extend", "post")]["responses"])
    assert {"400", "401", "403", "409", "422"} <= set(
        ops[("/api/applications", "post")]["responses"])


def test_the_rules_the_server_enforces_are_in_the_schema(
        api: tuple[TestClient, dict[str, str]]) -> None:
    spec = api[0].get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["ExtendIn"]["properties"]["days"]["minimum"] == 1
    for name in ("ExtendIn", "ReassignIn", "CloseIn"):
        reason = schemas[name]["properties"]["reason"]
        assert reason["minLength"] == 1 and "pattern" in reason and "reason" in \
            schemas[name]["required"]
    assert len(schemas["ClockMove"]["oneOf"]) == 2
    assert schemas["ApplicationIn"]["properties"]["snils"]["pattern"]
    assert schemas["AnswerBody"]["then"]["required"] == ["comment"]
    params = {p["name"]: p for p in
              spec["paths"]["/api/supervisor/escalations"]["get"]["parameters"]}
    assert "-age" in params["sort"]["schema"]["enum"]
    esc = spec["paths"]["/api/supervisor/escalations/{escalation_id}/acknowledge"]["post"]
    (eid,) = [p for p in esc["parameters"] if p["name"] == "escalation_id"]
    assert eid["schema"]["maximum"] == 2**31 - 1


@pytest.mark.parametrize(("method", "url", "body", "field"), [
    ("POST", "/api/supervisor/escalations/9223372036854775808/acknowledge", {}, "escalation_id"),
    ("POST", "/api/supervisor/escalations/2147483648/acknowledge", {}, "escalation_id"),
    ("POST", "/api/supervisor/escalations/0/acknowledge", {}, "escalation_id"),
    ("GET", "/api/supervisor/escalations?level=99999999999999999999", None, "level"),
    ("GET", "/api/supervisor/escalations?min_age_days=99999999999999999999", None,
     "min_age_days"),
    ("GET", "/api/supervisor/escalations?sort=name", None, "sort"),
    ("POST", "/api/supervisor/steps/st_x/extend", {"days": 0, "reason": "x"}, "days"),
    ("POST", "/api/supervisor/steps/st_x/extend", {"days": 2**64, "reason": "x"}, "days"),
    ("POST", "/api/supervisor/steps/st_x/extend", {"days": 1, "reason": "\u200b\u00a0"},
     "reason"),
    ("POST", "/api/supervisor/steps/st_x/close", {"reason": ""}, "reason"),
    ("GET", "/api/routes/" + "r" * 41 + "/history", None, "route_id"),
    ("GET", "/api/supervisor/escalations?stauts=all", None, "stauts"),  # misspelt filter
])
def test_out_of_range_parameters_are_4xx(api: tuple[TestClient, dict[str, str]], method: str,
                                         url: str, body: dict[str, Any] | None,
                                         field: str) -> None:
    client, t = api
    r = client.request(method, url, json=body, headers={"Authorization": f"Bearer {t['sup']}"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()
