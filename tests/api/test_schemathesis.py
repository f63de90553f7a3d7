"""Schemathesis (a property-based OpenAPI fuzzer) against the live API (uvicorn on loopback),
for every operation of ``/openapi.json``, authenticated as each staff role and — for the
agency webhook — validly signed by a seeded agency (issue 8).

Each operation gets schema-conforming (positive) and schema-violating (negative) requests,
checked with schemathesis' default checks: no 5xx, responses that match their documented
schema, no undocumented status code, content types and headers as documented, refusals of
invalid data and acceptance of valid data. Bounded and derandomized (``MAX_EXAMPLES`` per
operation, mode and role) so it stays within a few minutes on a 2-core machine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from engine.staff.accounts import create_staff
from models.persons import Person
from sim.seed import make_secret
from tasks.processes import free_port

MAX_EXAMPLES = 25  # per operation, mode and role (about 1.5 minutes of CPU in all)
WEBHOOK_EXAMPLES = 100  # the agencies' endpoint: one operation, cheap to call
ADMIN = "adm-0f4b7d2c93"
AGENCY = "mz39"  # a seeded agency: the webhook's signed requests come from it
WEBHOOK = "/webhooks/agencies/{agency_id}"

# Rules JSON Schema cannot say (a check number, dates against the business clock, the
# calendars' range, the state of a step): schema-valid requests may be refused with 422
# for these rules only — any other 422 to a schema-valid request fails the test.
RULES_BEYOND_THE_SCHEMA = (
    "check number does not match",  # the SNILS check number (models/persons.py)
    "birth_date: must be before the registration date",
    "registered_at:",  # not later than now; inside the production calendars
    "ipra_deadlines:",  # keys are the template's step kinds; not before registration
    "working_days: business time never moves backwards",
    "working_days: business time must stay within", "seconds: business time must stay within",
    "region:",  # a region with a production calendar (calendars/data)
    "days: extended by",  # the extended deadline must be in the future
    "agency_id:",  # reassignment: same role and region, active, not the same agency
)

# The person's file (the 363н form, the consent, the ИПРА extract) is validated by the domain
# layer, which lists every bad field with its rule (``errors``). Their published schemas
# carry every rule JSON Schema can express (patterns, lengths, enums, bounds); a schema-valid
# request may be refused only when **every** error it lists is one of these rules, which
# read another field, the business clock, the calendars or the person's file:
FILE_RULES_BEYOND_THE_SCHEMA = frozenset({
    "snils_check_number",  # the SNILS check number (models/snils.py)
    # the form (models/application.py): a field asked or not asked for another's value
    "required_for_kind", "not_applicable", "portal_signature", "paper_signature",
    "provide_by_organisation", "authority_document_kind", "contact_required",
    "channel_needs_email", "channel_needs_phone", "channel_needs_mobile",
    "on_behalf_social_employment_only", "self_application_age", "disability_required",
    # dates against other dates of the form
    "issued_after_birth", "issued_before_application", "authority_expired",
    "born_before_application", "established_in_range", "child_category_under_18",
    "group_from_18", "child_until_18", "valid_until_after_issue",
    # the disability's term (models/disability.py): until a date or indefinite
    "until_after_established", "term_either", "term_required", "child_not_indefinite",
    # an identity document's series and number by its kind (models/identity.py)
    "passport_series", "birth_certificate_series", "document_number",
    # the business clock, the production calendars (engine/applications.py)
    "not_in_future", "region_not_served", "calendar_range",
    # the consent (models/consent.py, engine/consent_renewal.py) against its history
    "after_given", "consent_of_another_person", "version_exists", "version_order",
    "not_a_withdrawal", "expired", "missing", "withdrawn", "purpose_not_covered",
    "categories_not_covered",
    # the ИПРА (models/ipra.py): dates, term and age, one executor, funding of aids only,
    # each category once
    "executor_one_of", "due_within_term", "funding_required", "born_before_issue",
    "kind_fits_age", "valid_from_after_issue", "until_after_from", "until_18_child_only",
    "category_once",
})


# Strict JSON of the agency webhook: JSON Schema cannot bound every string and number of a
# free-form payload, so a schema-valid answer may get 400 for these (docs/agencies.md)
STRICT_JSON_RULES = ("the NUL character", "lone surrogate", "out of range",
                     "nested deeper than")


class _Refused422(AssertionError):
    pass


def rejected_only_for_rules_beyond_the_schema(ctx: Any, response: Any, case: Any) -> bool:
    """schemathesis' positive_data_acceptance, except a 422 naming a rule JSON Schema cannot
    express (RULES_BEYOND_THE_SCHEMA)."""
    if response.status_code == 400 and any(rule in response.json().get("detail", "")
                                           for rule in STRICT_JSON_RULES):
        return True  # the webhook's strict JSON (api/strict_json.py), anywhere in the body
    if response.status_code == 422:
        body = response.json()
        detail = body.get("detail", "")
        items = body.get("errors") or []
        if items and all(isinstance(e, dict) and "rule" in e for e in items):  # a form's
            beyond = {e["rule"] for e in items} - FILE_RULES_BEYOND_THE_SCHEMA
            if not beyond:
                return True
            raise _Refused422(f"schema-valid request refused: {detail}: rules "
                              f"{sorted(map(str, beyond))} are not beyond the schema")
        if any(rule in detail for rule in RULES_BEYOND_THE_SCHEMA):
            return True
        raise _Refused422(f"schema-valid request refused: {detail}")
    return positive_data_acceptance(ctx, response, case) is not False


class StandardWebhookSigner(requests.auth.AuthBase):
    """Signs the request as sent (its final body bytes) with the agency's secret."""

    def __init__(self, secret: str) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_") + "==")

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        raw = body.encode() if isinstance(body, str) else body
        msg_id, ts = f"fuzz-{uuid.uuid4()}", str(int(time.time()))
        sig = hmac.new(self.key, f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()
        r.headers.update({"webhook-id": msg_id, "webhook-timestamp": ts,
                          "webhook-signature": "v1," + base64.b64encode(sig).decode()})
        return r


@pytest.fixture
def live(db: Engine, clock: DbClock, cfg: EngineConfig,
         seeded: list[Person]) -> Iterator[tuple[str, dict[str, str]]]:
    with Session(db, expire_on_commit=False) as s:
        register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                             template_code="supported_living", template_version=0)
        tokens = {role: create_staff(s, id=f"{role}39", display_name="Т", role=role,
                                     region="39")[1]
                  for role in ("coordinator", "supervisor", "admin")}
        s.commit()
    port = free_port()
    app = create_app(db, settings=Settings(environment="test", prefect_mirror=False,
                                           admin_token=ADMIN), clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        t.join(0.02)
    yield f"http://127.0.0.1:{port}", tokens
    server.should_exit = True
    t.join(10)
    app.state.answer_writer.close()


def _fuzz(base: str, mode: GenerationMode, call_kwargs: dict[str, Any], *,
          operations: set[str] | None = None, skip: frozenset[str] = frozenset(),
          examples: int = MAX_EXAMPLES) -> dict[str, str]:
    """Fuzz the operations (all by default); the failures found, by operation."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: dict[str, str] = {}
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (operations is not None and op.path not in operations) or op.path in skip:
            continue
        ran += 1
        fixed = {"agency_id": AGENCY} if op.path == WEBHOOK else None
        strategy = op.as_strategy(generation_mode=mode, path_parameters=fixed)

        @given(case=strategy)
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case: Any) -> None:
            if mode is GenerationMode.POSITIVE:
                case.call_and_validate(
                    base_url=base, excluded_checks=[positive_data_acceptance],
                    additional_checks=[rejected_only_for_rules_beyond_the_schema],
                    **call_kwargs)
            elif case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
                # the invalid part is a header (e.g. Authorization left out or malformed):
                # send the case as generated, without our credentials over it
                case.call_and_validate(base_url=base, **{
                    k: v for k, v in call_kwargs.items() if k != "headers"})
            else:
                case.call_and_validate(base_url=base, **call_kwargs)

        try:
            run()
        except Unsatisfiable:  # negative mode: the operation has nothing to make invalid
            continue
        except Exception as exc:  # noqa: BLE001 - collected and reported together
            failures[f"{op.method.upper()} {op.path}"] = str(exc)[:3000]
    assert ran, "no operation was fuzzed"
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("role", ["coordinator", "supervisor", "admin"])
def test_every_operation_holds_its_contract_for_each_role(
        live: tuple[str, dict[str, str]], role: str, mode: GenerationMode) -> None:
    base, tokens = live
    failures = _fuzz(base, mode, {"headers": {"Authorization": f"Bearer {tokens[role]}"}},
                     skip=frozenset({WEBHOOK}))
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_agency_webhook_holds_its_contract_when_validly_signed(
        live: tuple[str, dict[str, str]], mode: GenerationMode) -> None:
    base, _ = live
    failures = _fuzz(base, mode, {"auth": StandardWebhookSigner(make_secret(AGENCY))},
                     operations={WEBHOOK}, examples=WEBHOOK_EXAMPLES)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
