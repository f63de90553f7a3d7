"""job.lease_token (fenced leases) and job.dead_at (jobs retried past their maximum)

Revision ID: 0006
Revises: 0005

``finish`` and ``retry_later`` act only while the row carries the caller's ``locked_by`` and
``lease_token``; a job retried past its maximum gets ``dead_at`` and is not claimed again
until a person revives it (``rehab jobs retry``).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as b:
        b.add_column(sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32),
                               nullable=True))
        b.add_column(sa.Column("dead_at", models.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as b:
        b.drop_column("dead_at")
        b.drop_column("lease_token")
