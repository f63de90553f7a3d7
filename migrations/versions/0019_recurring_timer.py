"""timer.kind 'recur_next': the timer of a recurring step's next occurrence (001 Регламент
п.6 пп.8)

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite stores the enum as VARCHAR(longest value, 19): 'recur_next' fits
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE timerkind ADD VALUE IF NOT EXISTS 'recur_next'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; a 'recur_next' timer left behind is inert
    op.execute("DELETE FROM timer WHERE kind = 'recur_next'")
