"""The benchmark rivals run the route scenario end to end over real HTTP on 127.0.0.1.

DBOS: 3 routes × 3 steps. Naive Prefect (slow: its own Prefect server and runner): 1 route.
Both must apply every answer, and the echo agency must see exactly one distinct
idempotency key per step.
"""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest

from bench.echo_agency import start_echo_agency
from bench.rivals_common import build_request, make_secrets, post_request, task_id_for
from tasks.signing import sign_headers

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def test_echo_agency_verifies_signatures_and_counts_distinct_keys() -> None:
    secrets = make_secrets(["MSE"])
    assert secrets["MSE"].startswith("whsec_")
    base64.b64decode(secrets["MSE"].removeprefix("whsec_"))
    with start_echo_agency(secrets) as agency, httpx.Client(timeout=10.0) as client:
        # The callback URL is unreachable: answers are not part of this check.
        body = build_request(route_id="r1", index=0, callback_url="http://127.0.0.1:9/cb")
        assert post_request(client, agency.url_for("MSE"), secrets["MSE"], body) == 202
        assert post_request(client, agency.url_for("MSE"), secrets["MSE"], body) == 200
        raw = json.dumps(body).encode()
        forged = sign_headers(make_secrets(["MSE"])["MSE"], body["idempotency_key"], raw)
        resp = client.post(agency.url_for("MSE"), content=raw, headers=forged)
        assert resp.status_code == 401
        stats = agency.stats()
    assert stats["requests"] == 2
    assert stats["distinct_keys"] == 1
    assert stats["rejected"] == 1
    assert body["task_id"] == task_id_for("r1", 0)


def test_dbos_rival_completes_every_transition() -> None:
    from bench import rival_dbos

    result = rival_dbos.run(3, steps=3, answer_timeout_s=60.0)
    assert result.notes["errors"] == []
    assert result.completed
    assert result.transitions == result.expected_transitions == 9
    assert result.notes["agency"]["distinct_keys"] == 9
    assert result.notes["agency"]["answers_delivered"] == 9
    assert result.notes["callbacks_rejected"] == 0
    assert result.transitions_per_s > 0
    assert result.peak_rss_mb > 0
    assert result.threads_peak >= 3


@pytest.mark.slow
def test_prefect_naive_rival_completes_one_route() -> None:
    from bench import rival_prefect_naive

    result = rival_prefect_naive.run(1, steps=3, max_seconds=240.0)
    assert result.notes["errors"] == []
    assert result.completed, result.notes
    assert result.transitions == result.expected_transitions == 3
    assert result.notes["agency"]["distinct_keys"] == 3
    assert result.notes["resumes"] == 3
