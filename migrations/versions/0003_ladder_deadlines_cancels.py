"""ladder: deadline kinds (send-by level 2, complete-by from the ИПРА or the template),
calendar version on timers, cancel notices, notification claim, TRUNCATE refused on the
audit log

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

import models.types


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMER_KINDS = ("send_overdue", "send_escalation", "answer_reminder", "answer_overdue",
               "answer_escalation", "complete_overdue", "complete_escalation")
OLD_TIMER_KINDS = ("send_overdue", "answer_reminder", "answer_overdue", "answer_escalation")
JOB_KINDS = ("send_request", "apply_answer", "mirror_route", "send_notification",
             "send_cancel")
OLD_JOB_KINDS = ("send_request", "apply_answer", "mirror_route", "send_notification")
NOTIFICATION_STATES = ("pending", "sending", "sent", "failed")
OLD_NOTIFICATION_STATES = ("pending", "sent", "failed")
DEADLINE_KINDS = ("send_by", "answer_by", "complete_by")


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    pg = _pg()
    # -- new values of existing enums ------------------------------------------------------
    if pg:
        # (usable once this transaction commits; nothing below uses them)
        for value in ("send_escalation", "complete_overdue", "complete_escalation"):
            op.execute(f"ALTER TYPE timerkind ADD VALUE IF NOT EXISTS '{value}'")
        op.execute("ALTER TYPE jobkind ADD VALUE IF NOT EXISTS 'send_cancel'")
        op.execute("ALTER TYPE notificationstatus ADD VALUE IF NOT EXISTS 'sending' "
                   "AFTER 'pending'")
    else:
        # SQLite stores enums as VARCHAR(longest value): widen to the new longest
        with op.batch_alter_table("timer") as b:
            b.alter_column("kind", existing_type=sa.Enum(*OLD_TIMER_KINDS, name="timerkind"),
                           type_=sa.Enum(*TIMER_KINDS, name="timerkind"),
                           existing_nullable=False)
        with op.batch_alter_table("job") as b:
            b.alter_column("kind", existing_type=sa.Enum(*OLD_JOB_KINDS, name="jobkind"),
                           type_=sa.Enum(*JOB_KINDS, name="jobkind"), existing_nullable=False)
        with op.batch_alter_table("notification") as b:
            b.alter_column("status",
                           existing_type=sa.Enum(*OLD_NOTIFICATION_STATES,
                                                 name="notificationstatus"),
                           type_=sa.Enum(*NOTIFICATION_STATES, name="notificationstatus"),
                           existing_nullable=False)

    # -- timer: the calendar data version its due time was computed with -------------------
    with op.batch_alter_table("timer") as b:
        b.add_column(sa.Column("calendar_version",
                               sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        b.create_index("ix_timer_pending_calver", ["status", "calendar_version"], unique=False)

    # -- escalation: which deadline, and why it was opened ---------------------------------
    deadline_kind = sa.Enum(*DEADLINE_KINDS, name="deadlinekind")
    if pg:
        deadline_kind.create(op.get_bind(), checkfirst=True)
        column_type: sa.types.TypeEngine = postgresql.ENUM(*DEADLINE_KINDS, name="deadlinekind",
                                                           create_type=False)
    else:
        column_type = deadline_kind
    with op.batch_alter_table("escalation") as b:
        b.add_column(sa.Column("deadline_kind", column_type, nullable=False,
                               server_default="answer_by"))
        b.add_column(sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=300),
                               nullable=True))
    # rungs opened by a send-by timer before this revision were about the send-by deadline
    op.execute(
        "UPDATE escalation SET deadline_kind = 'send_by' WHERE EXISTS (SELECT 1 FROM timer "
        "WHERE timer.step_id = escalation.step_id AND timer.kind = 'send_overdue' "
        "AND timer.deadline_version = escalation.deadline_version)"
    )
    with op.batch_alter_table("escalation") as b:
        b.alter_column("deadline_kind", server_default=None, existing_type=column_type,
                       existing_nullable=False)
        b.drop_constraint("uq_escalation_level", type_="unique")
        b.create_unique_constraint(
            "uq_escalation_rung", ["step_id", "deadline_kind", "level", "deadline_version"])

    # -- step: the ИПРА measure's deadline and the complete-by deadline ---------------------
    with op.batch_alter_table("step") as b:
        b.add_column(sa.Column("ipra_due_date", sa.Date(), nullable=True))
        b.add_column(sa.Column("complete_by_date", sa.Date(), nullable=True))
        b.add_column(sa.Column("complete_by_source",
                               sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))

    # -- cancel notices to agencies ----------------------------------------------------------
    channel = (postgresql.ENUM("http", "inbox", name="requestchannel", create_type=False)
               if pg else sa.Enum("http", "inbox", name="requestchannel"))
    op.create_table(
        "cancel_notice",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("channel", channel, nullable=False),
        sa.Column("state", sa.Enum("queued", "delivered", "failed", name="cancelstate"),
                  nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["agency_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    with op.batch_alter_table("cancel_notice") as b:
        b.create_index(b.f("ix_cancel_notice_agency_id"), ["agency_id"], unique=False)
        b.create_index(b.f("ix_cancel_notice_state"), ["state"], unique=False)

    # -- the audit log: TRUNCATE is refused too (PostgreSQL; SQLite has no TRUNCATE) --------
    if pg:
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
        )


def downgrade() -> None:
    pg = _pg()
    if pg:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
    with op.batch_alter_table("cancel_notice") as b:
        b.drop_index(b.f("ix_cancel_notice_state"))
        b.drop_index(b.f("ix_cancel_notice_agency_id"))
    op.drop_table("cancel_notice")
    if pg:
        op.execute("DROP TYPE IF EXISTS cancelstate")
    with op.batch_alter_table("step") as b:
        b.drop_column("complete_by_source")
        b.drop_column("complete_by_date")
        b.drop_column("ipra_due_date")
    op.execute("DELETE FROM escalation WHERE deadline_kind = 'complete_by'")
    with op.batch_alter_table("escalation") as b:
        b.drop_constraint("uq_escalation_rung", type_="unique")
        b.create_unique_constraint("uq_escalation_level",
                                   ["step_id", "level", "deadline_version"])
        b.drop_column("cause")
        b.drop_column("deadline_kind")
    if pg:
        op.execute("DROP TYPE IF EXISTS deadlinekind")
    with op.batch_alter_table("timer") as b:
        b.drop_index("ix_timer_pending_calver")
        b.drop_column("calendar_version")
    # PostgreSQL cannot drop a value of an enum type: the added values stay (unused)
