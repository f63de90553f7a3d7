"""process_beat: heartbeats of workers, sweepers and API processes; audit_event.request_id:
the HTTP request that wrote a record (issue 13)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_beat",
        sa.Column("process_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("kind", sa.Enum("worker", "sweeper", "api", name="processkind"),
                  nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("started_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("holding", sa.Integer(), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("process_id"),
    )
    # a plain ADD COLUMN (never batch mode: SQLite would rebuild the table and drop the
    # append-only triggers of 0002)
    op.add_column("audit_event", sa.Column(
        "request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_event", "request_id")
    op.drop_table("process_beat")
    sa.Enum(name="processkind").drop(op.get_bind(), checkfirst=True)
