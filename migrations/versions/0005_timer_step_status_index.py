"""timer(step_id, status): a step's pending timers are found without scanning all of them

Revision ID: 0005
Revises: 0004

Every delivery and every answer cancels the step's pending timers; with only the single-column
indexes SQLite's planner chose (status, …) and walked every pending timer of every waiting
route (10 ms a cancel at 4,000 waiting routes, growing with their number).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_timer_step_status", "timer", ["step_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_timer_step_status", table_name="timer")
