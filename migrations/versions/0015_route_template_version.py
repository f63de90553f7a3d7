"""route.template_version: the template version a route started with and keeps (0: the
built-in template; n >= 1: models/route_templates/<code>-v<n>.toml)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("route") as batch:
        batch.add_column(sa.Column("template_version", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("route") as batch:
        batch.drop_column("template_version")
