"""Participant agencies: onboarding, endpoints and webhook secrets (rotation).

Participants of interagency interaction: 298-п Порядок п.3, Регламент п.4; 363н п.3, п.4.
Exchange may be electronic (an endpoint) or on paper / through the agency's inbox
(298-п Регламент п.13): an agency without an endpoint gets its requests in its inbox.

Secrets follow Standard Webhooks: ``whsec_`` + base64 of 32 random bytes. Both directions
are signed with them. During a rotation an agency has two valid secrets: answers signed with
either are accepted, and our requests carry a signature by each. A secret is shown once
(when issued) and never written to the audit or a log: the audit keeps a short fingerprint.

The demo's secrets (``sim.seed.make_secret``) are derived from a public seed string:
production refuses them (they are never used to sign or to verify there).

Used by ``rehab agency ...`` (``cli/agency.py``); an admin API may call the same functions.
Each function works in the caller's transaction and writes its audit record there.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets as _secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.infra.settings import get_settings
from models.agencies import Agency, AgencyRole
from models.types import utcnow

SECRET_PREFIX = "whsec_"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")


class DemoSecretError(EngineError):
    """A public demo secret found where production needs a real one."""


def new_secret() -> str:
    """A fresh secret: ``whsec_`` + base64 of 32 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def fingerprint(secret: str) -> str:
    """A short SHA-256 fingerprint of a secret: safe to log and to compare by phone."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def derive_demo_secret(seed: str) -> str:
    """The demo secret of ``seed``, derived from a public string: for recognising it
    (``is_demo_secret``), never for signing in production."""
    raw = hashlib.sha256(f"rehab-demo-secret:{seed}".encode()).digest()
    return "whsec_" + base64.b64encode(raw).decode()


def is_demo_secret(agency_id: str, secret: str | None) -> bool:
    """Whether ``secret`` is the demo's public secret derived for ``agency_id``."""
    return bool(secret) and secret == derive_demo_secret(agency_id)


def usable_secrets(agency: Agency, *, production: bool) -> list[str]:
    """The agency's valid secrets, current first (then the previous one, during a rotation).

    Used both to sign our requests and to verify the agency's answers. In production a
    demo secret is never used: it is derived from a public string.
    """
    out = [s for s in (agency.secret_current, agency.secret_previous) if s]
    if production:
        out = [s for s in out if not is_demo_secret(agency.id, s)]
    return out


def usable_secrets_of(session: Session, agency_id: str, *, production: bool) -> list[str] | None:
    """The usable secrets of an active agency (``usable_secrets``); None for an unknown or
    inactive one."""
    agency = session.get(Agency, agency_id)
    if agency is None or not agency.active:
        return None
    return usable_secrets(agency, production=production)


def demo_secret_holders(session: Session) -> list[str]:
    """Ids of active agencies holding a demo secret (current or previous)."""
    rows = session.exec(select(Agency).where(col(Agency.active).is_(True))
                        .order_by(col(Agency.id)))
    return [a.id for a in rows
            if is_demo_secret(a.id, a.secret_current) or is_demo_secret(a.id, a.secret_previous)]


def refuse_demo_secrets(engine: Engine) -> None:
    """Raise DemoSecretError (one line naming the agencies and the fix) if any active agency
    holds a demo secret. Called at the start of ``rehab api`` / ``rehab worker`` in
    production."""
    with Session(engine) as s:
        ids = demo_secret_holders(s)
    if ids:
        shown = ", ".join(ids[:10]) + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else "")
        raise DemoSecretError(
            f"agency secrets: {shown} hold the public demo secret, refused in production; "
            "issue real ones with `rehab agency rotate-secret ID`")


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError("endpoint_url: must be an http:// or https:// URL with a host",
                          rule="url")
    if parts.username or parts.password:
        raise EngineError("endpoint_url: must not carry credentials (we sign every request)",
                          rule="url_credentials")
    settings = get_settings()
    if (parts.scheme == "http" and settings.environment == "production"
            and not settings.allow_http_agency_endpoints):
        raise EngineError("endpoint_url: must be https:// in production (requests carry "
                          "personal data; REHAB_ALLOW_HTTP_AGENCY_ENDPOINTS=true allows http "
                          "on a closed network)", rule="https_required")
    if len(url) > 500:
        raise EngineError("endpoint_url: at most 500 characters", rule="max_length",
                          params={"max": 500})
    return url


def _get(session: Session, agency_id: str) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFoundError(f"agency_id: no agency {agency_id!r}", rule="unknown")
    return agency


def _check_card(name: str, short_name: str, role: AgencyRole | str,
                region: str) -> AgencyRole:
    """The agency card's rules, shared by adding and correcting one: names of 1-300 and 1-60
    characters, a known participant role, a region with a calendar (CalendarError naming
    it otherwise). Returns the role."""
    if not name.strip() or len(name.strip()) > 300:
        raise EngineError("name: 1-300 characters", rule="length",
                          params={"min": 1, "max": 300})
    if not short_name.strip() or len(short_name.strip()) > 60:
        raise EngineError("short_name: 1-60 characters", rule="length",
                          params={"min": 1, "max": 60})
    try:
        checked = AgencyRole(role)
    except ValueError:
        raise EngineError(
            f"role: must be one of {', '.join(r.value for r in AgencyRole)}",
            rule="choice") from None
    calendars.get_calendar(region)  # unknown region -> CalendarError naming it
    return checked


def add_agency(
    session: Session, *, id: str, name: str, short_name: str, role: AgencyRole | str,
    region: str, endpoint_url: str | None = None, email: str | None = None,
    now: datetime | None = None, actor: str = "system:agencies", district: str | None = None,
) -> tuple[Agency, str]:
    """Register a participant agency; returns (agency, secret). The secret is returned once,
    to be handed to the agency; the audit keeps only its fingerprint."""
    if not ID_RE.match(id):
        raise EngineError("id: 2-40 characters of a-z, 0-9, '_', '-', starting with a letter "
                          "or digit", rule="agency_id_pattern")
    role = _check_card(name, short_name, role, region)
    url = _check_url(endpoint_url)
    if email is not None and ("@" not in email or len(email) > 200):
        raise EngineError("email: must be an e-mail address (at most 200 characters)",
                          rule="email", params={"max": 200})
    if district is not None and not 1 <= len(district.strip()) <= 200:
        raise EngineError("district: 1-200 characters (the municipality it serves)",
                          rule="length", params={"min": 1, "max": 200})
    if session.get(Agency, id) is not None:
        raise EngineError(f"id: agency {id!r} exists already", rule="exists")
    secret = new_secret()
    agency = Agency(id=id, name=name.strip(), short_name=short_name.strip(), role=role,
                    region=region, endpoint_url=url, email=email, secret_current=secret,
                    district=district.strip() if district else None)
    session.add(agency)
    audit.record(session, at=now or utcnow(), actor=actor, entity="agency", entity_id=id,
                 action="created",
                 after={"role": role.value, "region": region, "endpoint_url": url,
                        **({"district": agency.district} if agency.district else {}),
                        "channel": "http" if url else "inbox",
                        "secret_fingerprint": fingerprint(secret)})
    return agency, secret


def update_agency(
    session: Session, agency_id: str, *, name: str, short_name: str, role: AgencyRole | str,
    region: str, email: str | None = None, now: datetime | None = None,
    actor: str = "system:agencies",
) -> Agency:
    """Correct an agency's card: name, short name, role, region and reminder e-mail (the
    administrator's page). Checked by the rules of ``add_agency``; the audit keeps what each
    changed field was and became. Requests already sent keep their agency and step; a new
    region's calendar counts the deadlines of requests sent from now on."""
    agency = _get(session, agency_id)
    role = _check_card(name, short_name, role, region)
    email = (email or "").strip() or None
    if email is not None and ("@" not in email or len(email) > 200):
        raise EngineError("email: must be an e-mail address (at most 200 characters)",
                          rule="email", params={"max": 200})
    wanted: dict[str, str | None] = {"name": name.strip(), "short_name": short_name.strip(),
                                     "role": role.value, "region": region, "email": email}
    current: dict[str, str | None] = {"name": agency.name, "short_name": agency.short_name,
                                      "role": agency.role.value, "region": agency.region,
                                      "email": agency.email}
    changed = [k for k in wanted if wanted[k] != current[k]]
    if not changed:
        return agency
    agency.name, agency.short_name = name.strip(), short_name.strip()
    agency.role, agency.region, agency.email = role, region, email
    session.add(agency)
    audit.record(session, at=now or utcnow(), actor=actor, entity="agency",
                 entity_id=agency_id, action="updated",
                 before={k: current[k] for k in changed}, after={k: wanted[k] for k in changed})
    return agency


def list_agencies(session: Session, *, region: str | None = None) -> list[Agency]:
    """Agencies (of ``region``), by id."""
    q = select(Agency).order_by(col(Agency.id))
    if region is not None:
        q = q.where(Agency.region == region)
    return list(session.exec(q))


def set_endpoint(
    session: Session, agency_id: str, endpoint_url: str | None, *,
    now: datetime | None = None, actor: str = "system:agencies",
) -> Agency:
    """Point the agency's requests at ``endpoint_url`` (None: its inbox, 298-п Регламент
    п.13). Requests already delivered stay where they are; new ones go to the new place."""
    agency = _get(session, agency_id)
    url = _check_url(endpoint_url)
    before = agency.endpoint_url
    agency.endpoint_url = url
    session.add(agency)
    audit.record(session, at=now or utcnow(), actor=actor, entity="agency",
                 entity_id=agency_id, action="endpoint_changed",
                 before={"endpoint_url": before}, after={"endpoint_url": url})
    return agency


def rotate_secret(
    session: Session, agency_id: str, *, now: datetime | None = None,
    actor: str = "system:agencies",
) -> str:
    """Issue a new current secret; the old one stays valid as the previous secret until
    ``retire_previous``. Returns the new secret (shown once).

    Refused while a previous secret is still set (retire it first: an agency may still use
    it). A demo secret is not kept as the previous one: it is public.
    """
    agency = _get(session, agency_id)
    if agency.secret_previous:
        raise EngineError("secret_previous: a rotation is in progress; retire the previous "
                          "secret first (`rehab agency retire-previous ID`)",
                          rule="rotation_in_progress")
    old = agency.secret_current
    keep = not is_demo_secret(agency.id, old)
    secret = new_secret()
    agency.secret_previous = old if keep else None
    agency.secret_current = secret
    session.add(agency)
    audit.record(session, at=now or utcnow(), actor=actor, entity="agency",
                 entity_id=agency_id, action="secret_rotated",
                 before={"secret_fingerprint": fingerprint(old)},
                 after={"secret_fingerprint": fingerprint(secret),
                        "previous_kept": keep},
                 reason=None if keep else "the public demo secret is not kept")
    return secret


def retire_previous(
    session: Session, agency_id: str, *, now: datetime | None = None,
    actor: str = "system:agencies",
) -> Agency:
    """End a rotation: only the current secret stays valid."""
    agency = _get(session, agency_id)
    if not agency.secret_previous:
        raise EngineError("secret_previous: none to retire (no rotation in progress)",
                          rule="no_rotation")
    old = agency.secret_previous
    agency.secret_previous = None
    session.add(agency)
    audit.record(session, at=now or utcnow(), actor=actor, entity="agency",
                 entity_id=agency_id, action="secret_previous_retired",
                 before={"previous_fingerprint": fingerprint(old)},
                 after={"previous_fingerprint": None})
    return agency


def describe(agency: Agency) -> dict[str, str | bool | None]:
    """What may be shown of an agency (no secret: fingerprints only)."""
    return {
        "id": agency.id, "short_name": agency.short_name, "role": agency.role.value,
        "region": agency.region, "active": agency.active,
        "channel": "http" if agency.endpoint_url else "inbox",
        "endpoint_url": agency.endpoint_url,
        "secret_fingerprint": fingerprint(agency.secret_current),
        "previous_fingerprint": (fingerprint(agency.secret_previous)
                                 if agency.secret_previous else None),
        "demo_secret": (is_demo_secret(agency.id, agency.secret_current)
                        or is_demo_secret(agency.id, agency.secret_previous)),
    }

