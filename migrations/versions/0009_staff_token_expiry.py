"""staff_user.token_expires_at and token_revoked_at: staff tokens expire and can be revoked

Revision ID: 0009
Revises: 0008

Tokens issued before this revision expire 90 days after it (the default
``staff_token_ttl_days``); ``rehab staff rotate`` issues new ones.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user") as b:
        b.add_column(sa.Column("token_expires_at", models.types.UTCDateTime(timezone=True),
                               nullable=True))
        b.add_column(sa.Column("token_revoked_at", models.types.UTCDateTime(timezone=True),
                               nullable=True))
    expires = datetime.now(UTC) + timedelta(days=90)
    staff = sa.table("staff_user",
                     sa.column("token_expires_at", models.types.UTCDateTime(timezone=True)))
    op.get_bind().execute(staff.update().values(token_expires_at=expires))


def downgrade() -> None:
    with op.batch_alter_table("staff_user") as b:
        b.drop_column("token_revoked_at")
        b.drop_column("token_expires_at")
