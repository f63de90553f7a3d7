"""Alembic environment: our schema is SQLModel.metadata (every table in ``models``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    from engine.infra.db import make_engine

    with make_engine().begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
