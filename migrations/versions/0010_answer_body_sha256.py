"""agency_answer.body_sha256: the SHA-256 of the answer's raw body

Revision ID: 0010
Revises: 0009

A reused webhook-id is a duplicate only when its body is byte-identical to the stored one; a
different body under a stored webhook-id is refused with 409 (docs/agencies.md). Answers
stored before this revision have no digest and their webhook-ids stay plain duplicates.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agency_answer") as batch:
        batch.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agency_answer") as batch:
        batch.drop_column("body_sha256")
