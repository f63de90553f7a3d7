"""Generated persons (demo, tests, benchmarks) never share a SNILS (person.snils is unique)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from sim.seed import make_persons


def test_persons_of_the_same_seed_twice_get_other_snils(db: Engine) -> None:
    with Session(db) as s:
        first = make_persons(s, 20)
        again = make_persons(s, 20)  # the same seed draws the same SNILS: drawn again
        s.commit()
        assert len({p.snils for p in first + again}) == 40
        assert [p.full_name for p in first] == [p.full_name for p in again]
