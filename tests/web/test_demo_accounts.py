"""The demo prints one account per role, always: before any agency was asked anything its
agency user belongs to the region's first agency; with no agency at all it is an error
naming the region, never a silently missing account."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.agencies import AgencyRequest
from models.staff import StaffRole, StaffUser
from sim.demo_accounts import NoDemoAgency, create_demo_accounts
from sim.seed import seed_agencies


def test_with_no_agency_the_demo_accounts_are_refused_naming_the_region(db: Engine) -> None:
    with pytest.raises(NoDemoAgency, match="region: no active agency in region '39'"):
        create_demo_accounts(db)
    with Session(db) as s:
        assert not list(s.exec(select(StaffUser)))  # nothing half-made


def test_before_any_request_the_agency_user_gets_the_regions_first_agency(db: Engine) -> None:
    with Session(db) as s:
        agencies = seed_agencies(s)
        s.commit()
        first = min(a.id for a in agencies if a.region == "39" and a.active)
        assert not list(s.exec(select(AgencyRequest)))
    accounts = {a.role: a for a in create_demo_accounts(db)}
    assert set(accounts) == set(StaffRole)
    with Session(db) as s:
        user = s.get(StaffUser, accounts[StaffRole.agency].id)
        assert user is not None and user.agency_id == first
    assert first in accounts[StaffRole.agency].what
