"""The movable business clock, shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


# The one row (id=1) that says what time it is for the business rules.
class ClockState(SQLModel, table=True):
    __tablename__ = "clock_state"

    id: int = Field(default=1, primary_key=True)
    offset_seconds: float = 0.0
    frozen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
