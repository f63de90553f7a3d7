"""route_mirror: what the Prefect mirror last showed of a route beside its states — the log
watermark, the artifact and the state tags (issue 12, the Prefect view)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_mirror",
        sa.Column("route_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("log_through", sa.Integer(), nullable=False),
        sa.Column("log_recent", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("artifact_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("artifact_digest", sqlmodel.sql.sqltypes.AutoString(length=64),
                  nullable=True),
        sa.Column("tags", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("unsure", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["route_id"], ["route.id"]),
        sa.PrimaryKeyConstraint("route_id"),
    )


def downgrade() -> None:
    op.drop_table("route_mirror")
