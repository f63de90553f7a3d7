"""What a step had left when its route was suspended (152-ФЗ art. 9 ч.2; 004 п.11).

A suspension stops a route's clocks: its timers are cancelled and its open request withdrawn.
So that a resumed route goes on where it stopped — with the working days it had left, not
with fresh periods and not with periods that ran out while it stood still — each step's
remaining working days of each running deadline are stored here at the moment of suspension
(``engine.route_resume``). A route suspended twice has two rows per step; the open one is the
row with no ``resumed_at``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


# One step's state and remaining working days at one suspension of its route.
class StepSuspension(SQLModel, table=True):
    __tablename__ = "step_suspension"

    id: int | None = Field(default=None, primary_key=True)
    step_id: str = Field(foreign_key="step.id", index=True, max_length=40)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    status: str = Field(max_length=30, description="the step's status when suspended")
    request_id: str | None = Field(default=None, max_length=40,
                                   description="the open request withdrawn (re-sent on resume "
                                               "with its own idempotency key)")
    send_days_left: int | None = Field(
        default=None, description="working days left to the send-by deadline (0: due that "
                                  "day or overdue); None: no send-by deadline ran")
    send_by_date: date | None = None
    answer_days_left: int | None = Field(
        default=None, description="working days left to the answer-by deadline (0: due that "
                                  "day or overdue); None: no answer-by deadline ran")
    answer_by_date: date | None = None
    complete_days_left: int | None = Field(
        default=None, description="working days left to the complete-by deadline")
    complete_by_date: date | None = None
    suspended_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    resumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(max_length=500)
    refusal_id: int | None = Field(
        default=None, foreign_key="participant_refusal.id", index=True,
        description="the person's refusal of a participant's accompaniment that paused the "
                    "step (004 п.11); None: the route's suspension on a consent withdrawal")
