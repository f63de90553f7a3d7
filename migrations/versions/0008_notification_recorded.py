"""notification.status 'recorded': handled by a channel with no real transport (not 'sent')

Revision ID: 0008
Revises: 0007

From this revision a notification a recording adapter handles is ``recorded``. Rows handled
before it keep their status: which adapter handled one was not stored.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD = ("pending", "sending", "sent", "failed")
NEW = ("pending", "sending", "sent", "recorded", "failed")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE notificationstatus ADD VALUE IF NOT EXISTS 'recorded' "
                   "AFTER 'sent'")
    else:  # SQLite stores enums as VARCHAR(longest value): widen to the new longest
        with op.batch_alter_table("notification") as b:
            b.alter_column("status", existing_type=sa.Enum(*OLD, name="notificationstatus"),
                           type_=sa.Enum(*NEW, name="notificationstatus"),
                           existing_nullable=False)


def downgrade() -> None:
    op.execute("UPDATE notification SET status = 'sent' WHERE status = 'recorded'")
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("notification") as b:
            b.alter_column("status", existing_type=sa.Enum(*NEW, name="notificationstatus"),
                           type_=sa.Enum(*OLD, name="notificationstatus"),
                           existing_nullable=False)
