"""Every read of a person's data is an audit record (who, when, what) — the person's file
endpoints and GET /api/routes, /api/routes/{id}; staff of another region get 404; finding a
person by SNILS is for a coordinator of the person's region only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.ladder.conftest import Staff
from tests.person_file.conftest import NOW, audits, consent, extract, form


def _registered(api: TestClient, coord: Staff) -> dict[str, str]:
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(), "consent": consent()})
    assert r.status_code == 201, r.text
    out: dict[str, str] = r.json()
    return out


def test_every_read_is_audited_with_who_when_and_what(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    app = _registered(api, staff["coord39"])
    sup = staff["sup39"]
    assert audits(db, action="read") == []
    reads = [
        (f"/api/person-file/applications/{app['id']}", "application"),
        (f"/api/person-file/applications/{app['id']}/eligibility", "eligibility"),
        ("/api/person-file/applications", "application_summary"),
        (f"/api/persons/{app['person_id']}", "person"),
        (f"/api/routes/{app['route_id']}", "route"),
        ("/api/routes", "route"),
    ]
    for url, what in reads:
        before = len(audits(db, action="read"))
        r = api.get(url, headers=sup.headers)
        assert r.status_code == 200, (url, r.text)
        new = audits(db, action="read")[before:]
        assert new, url
        for ev in new:
            assert ev.actor == "staff:sup39" and ev.at == NOW
            assert ev.after is not None and ev.after["what"] == what
            assert ev.after["person_id"] in (app["person_id"],) or url == "/api/routes"
    # the full application carries the form; the list does not
    full = api.get(f"/api/person-file/applications/{app['id']}", headers=sup.headers).json()
    assert full["form"]["person"]["snils"] == "112-233-445 95"
    listed = api.get("/api/person-file/applications", headers=sup.headers).json()
    assert [a["id"] for a in listed] == [app["id"]] and "form" not in listed[0]


def test_another_regions_staff_get_404(api: TestClient, staff: dict[str, Staff]) -> None:
    app = _registered(api, staff["coord39"])
    for who in ("coord16", "sup16"):
        h = staff[who].headers
        for url in (f"/api/person-file/applications/{app['id']}",
                    f"/api/person-file/applications/{app['id']}/eligibility",
                    f"/api/persons/{app['person_id']}"):
            r = api.get(url, headers=h)
            assert r.status_code == 404, (who, url)
            assert "Синтетова" not in r.text
    assert api.get("/api/person-file/applications?region=39",
                   headers=staff["coord16"].headers).status_code == 403
    assert api.get("/api/person-file/applications", headers=staff["coord16"].headers).json() == []
    # an administrator acts in any region
    assert api.get(f"/api/persons/{app['person_id']}",
                   headers=staff["admin"].headers).status_code == 200


def test_finding_a_person_by_snils_only_by_their_regions_coordinator(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    app = _registered(api, staff["coord39"])
    body = {"snils": "11223344595"}
    r = api.post("/api/persons/search", json=body, headers=staff["coord39"].headers)
    assert r.status_code == 200 and r.json()["id"] == app["person_id"]
    assert r.json()["phones"] == [{"kind": "mobile", "number": "+79111234567"}]
    assert api.post("/api/persons/search", json=body,
                    headers=staff["coord16"].headers).status_code == 404
    assert api.post("/api/persons/search", json=body,
                    headers=staff["sup39"].headers).status_code == 403
    missing = api.post("/api/persons/search", json={"snils": "001-001-998 00"},
                       headers=staff["coord39"].headers)
    assert missing.status_code == 404 and "001-001" not in missing.text
    bad = api.post("/api/persons/search", json={"snils": "112-233-445 96"},
                   headers=staff["coord39"].headers)
    assert bad.status_code == 422 and "112-233" not in bad.text
    whats = [e.after["what"] for e in audits(db, action="read") if e.after]
    assert whats == ["person_by_snils", "snils_search", "snils_search"]


def test_openapi_documents_the_codes_and_bounds_integer_ids(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"401", "404"} <= set(paths["/api/persons/{person_id}"]["get"]["responses"])
    assert {"201", "403", "409", "422"} <= set(
        paths["/api/person-file/applications"]["post"]["responses"])
    [param] = paths["/api/ipra/{ipra_id}"]["get"]["parameters"]
    assert param["schema"]["minimum"] == 1 and param["schema"]["maximum"] == 2**31 - 1
