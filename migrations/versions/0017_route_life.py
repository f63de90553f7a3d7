"""The route's life (004 п.11–13): route status ``terminated`` with ``route.end_reason``;
step status ``paused``; ``participant_refusal`` (the person's refusal of a participant's
accompaniment, or of all) and ``step_suspension.refusal_id``; ``route_timer`` (the ИПРА's
end, fired by the sweeper)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE routestatus ADD VALUE IF NOT EXISTS 'terminated'")
        op.execute("ALTER TYPE stepstatus ADD VALUE IF NOT EXISTS 'paused'")
    with op.batch_alter_table("route") as batch:
        batch.add_column(sa.Column("end_reason", sqlmodel.sql.sqltypes.AutoString(length=30),
                                   nullable=True))
    op.create_table(
        "participant_refusal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("refused_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refused_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("resumed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("resume_application_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["route_id"], ["route.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_participant_refusal_route_id"), "participant_refusal",
                    ["route_id"])
    with op.batch_alter_table("step_suspension") as batch:
        batch.add_column(sa.Column("refusal_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_step_suspension_refusal_id"), ["refusal_id"])
        batch.create_foreign_key("fk_step_suspension_refusal_id", "participant_refusal",
                                 ["refusal_id"], ["id"])
    op.create_table(
        "route_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kind", sa.Enum("ipra_expiry", name="routetimerkind"), nullable=False),
        sa.Column("due_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("ipra_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Enum("pending", "fired", "cancelled", name="routetimerstatus"),
                  nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_reason", sqlmodel.sql.sqltypes.AutoString(length=300),
                  nullable=True),
        sa.ForeignKeyConstraint(["ipra_id"], ["ipra.id"]),
        sa.ForeignKeyConstraint(["route_id"], ["route.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_route_timer_route_id"), "route_timer", ["route_id"])
    op.create_index("ix_route_timer_due_pending", "route_timer", ["status", "due_at"])


def downgrade() -> None:
    # a PostgreSQL enum value cannot be dropped: 'terminated' and 'paused' stay
    op.drop_index("ix_route_timer_due_pending", table_name="route_timer")
    op.drop_index(op.f("ix_route_timer_route_id"), table_name="route_timer")
    op.drop_table("route_timer")
    with op.batch_alter_table("step_suspension") as batch:
        batch.drop_constraint("fk_step_suspension_refusal_id", type_="foreignkey")
        batch.drop_index(batch.f("ix_step_suspension_refusal_id"))
        batch.drop_column("refusal_id")
    op.drop_index(op.f("ix_participant_refusal_route_id"), table_name="participant_refusal")
    op.drop_table("participant_refusal")
    with op.batch_alter_table("route") as batch:
        batch.drop_column("end_reason")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS routetimerstatus")
        op.execute("DROP TYPE IF EXISTS routetimerkind")
