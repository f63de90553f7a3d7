"""step_suspension (what each open step had left when its route was suspended, for the
resume: 004 п.11); person_detail.destroyed_at (contacts destroyed, 152-ФЗ art. 21 ч.5)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_suspension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("route_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("send_days_left", sa.Integer(), nullable=True),
        sa.Column("send_by_date", sa.Date(), nullable=True),
        sa.Column("answer_days_left", sa.Integer(), nullable=True),
        sa.Column("answer_by_date", sa.Date(), nullable=True),
        sa.Column("complete_days_left", sa.Integer(), nullable=True),
        sa.Column("complete_by_date", sa.Date(), nullable=True),
        sa.Column("suspended_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(["route_id"], ["route.id"]),
        sa.ForeignKeyConstraint(["step_id"], ["step.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_step_suspension_route_id"), "step_suspension", ["route_id"])
    op.create_index(op.f("ix_step_suspension_step_id"), "step_suspension", ["step_id"])
    with op.batch_alter_table("person_detail") as batch:
        batch.add_column(sa.Column("destroyed_at", models.types.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("person_detail") as batch:
        batch.drop_column("destroyed_at")
    op.drop_index(op.f("ix_step_suspension_step_id"), table_name="step_suspension")
    op.drop_index(op.f("ix_step_suspension_route_id"), table_name="step_suspension")
    op.drop_table("step_suspension")
