"""route.plan (the ИПРА's measures and retired steps of a route, 004 п.10 пп.б),
agency.district (the provider rule `nearest`), provider_choice (001 Регламент п.15 пп.2)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
import models.types
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("route") as batch:
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=True))
    with op.batch_alter_table("agency") as batch:
        batch.add_column(sa.Column("district", sa.String(length=200), nullable=True))
    op.create_table(
        "provider_choice",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_id", sa.String(length=40), sa.ForeignKey("person.id"),
                  nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("agency_id", sa.String(length=40), sa.ForeignKey("agency.id"),
                  nullable=False),
        sa.Column("chosen_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.UniqueConstraint("person_id", "role", name="uq_provider_choice_role"),
    )
    op.create_index("ix_provider_choice_person_id", "provider_choice", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_choice_person_id", table_name="provider_choice")
    op.drop_table("provider_choice")
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("district")
    with op.batch_alter_table("route") as batch:
        batch.drop_column("plan")

