"""agency_request.body keeps identifiers only: the subject's data is dropped from stored bodies

Revision ID: 0007
Revises: 0006

152-ФЗ: names, SNILS and birth dates live only in ``person``. The worker puts the subject's
data into a request's body when it sends it (``engine.routes.transitions.request_body``), so the stored
body no longer needs — and no longer keeps — a copy. No column changes; downgrade restores
nothing (the data is in ``person``, and the worker adds it on send either way).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_request = sa.table("agency_request", sa.column("id", sa.String()),
                    sa.column("body", sa.JSON()))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_request.c.id, _request.c.body)).all()
    for request_id, body in rows:
        if isinstance(body, dict) and "subject" in body:
            kept = {k: v for k, v in body.items() if k != "subject"}
            conn.execute(_request.update().where(_request.c.id == request_id)
                         .values(body=kept))


def downgrade() -> None:
    pass
