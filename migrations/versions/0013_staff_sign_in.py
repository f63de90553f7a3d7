"""Sign-in of people (issue 12): staff passwords (argon2id), the agency role and agency
users' agency, server-side sessions and sign-in attempts (rate limit across processes)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TYPE staffrole ADD VALUE IF NOT EXISTS 'agency'")
    with op.batch_alter_table("staff_user") as b:
        b.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("agency_id", sa.String(length=40), nullable=True))
        b.create_foreign_key("fk_staff_user_agency", "agency", ["agency_id"], ["id"])
    op.create_table(
        "staff_session",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    op.create_index("ix_staff_session_staff_id", "staff_session", ["staff_id"])
    op.create_table(
        "signin_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_attempt_account", "signin_attempt", ["account"])
    op.create_index("ix_signin_attempt_client", "signin_attempt", ["client"])
    op.create_index("ix_signin_attempt_at", "signin_attempt", ["at"])


def downgrade() -> None:
    op.drop_table("signin_attempt")
    op.drop_table("staff_session")
    with op.batch_alter_table("staff_user") as b:
        b.drop_constraint("fk_staff_user_agency", type_="foreignkey")
        b.drop_column("agency_id")
        b.drop_column("password_hash")
