"""person.snils is unique: one person per SNILS, even under concurrent registrations

Revision ID: 0004
Revises: 0003

Refuses to upgrade (naming the count, not the SNILS) if the table already holds two persons
with one SNILS: they must be merged by a person first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dupes = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM (SELECT snils FROM person GROUP BY snils HAVING count(*) > 1) d"
    )).scalar_one()
    if dupes:
        raise RuntimeError(
            f"person.snils: {dupes} SNILS are held by more than one person; merge them "
            "before upgrading (no unique index can be built)")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_snils")
        batch_op.create_index("ix_person_snils", ["snils"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_snils")
        batch_op.create_index("ix_person_snils", ["snils"], unique=False)
