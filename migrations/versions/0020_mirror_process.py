"""process_beat.kind 'mirror': the heartbeat of ``rehab mirror``, the process that mirrors
routes into Prefect apart from the workers

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite stores the enum as VARCHAR(longest value, 7): 'mirror' fits
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE processkind ADD VALUE IF NOT EXISTS 'mirror'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; a mirror's beat left behind would be unreadable
    op.execute("DELETE FROM process_beat WHERE kind = 'mirror'")
