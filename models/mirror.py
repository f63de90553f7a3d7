"""What the Prefect mirror last showed of a route beside its states (issue 12, the Prefect
view): how far the route's audit records went out as log lines, the route's artifact and
its state tags. Only the mirror writes these rows (a transition never touches them), so
recording them waits on no route lock."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


# One row per mirrored route: the mirror's bookkeeping of logs, artifact and tags.
class RouteMirror(SQLModel, table=True):
    __tablename__ = "route_mirror"

    route_id: str = Field(primary_key=True, foreign_key="route.id", max_length=40)
    log_through: int = Field(
        default=0, description="every audit record of the route with an id up to this one is "
        "in the flow run's logs (or needs no log line)")
    log_recent: str | None = Field(
        default=None, max_length=2000, description="ids of audit records above log_through "
        "already written (comma-separated), kept until they are older than the settle time")
    artifact_id: str | None = Field(default=None, max_length=40,
                                    description="Prefect's id of the route's artifact")
    artifact_digest: str | None = Field(default=None, max_length=64,
                                        description="SHA-256 of the artifact as last written")
    tags: str | None = Field(default=None, max_length=200,
                             description="the state tags last set (comma-joined)")
    unsure: bool = Field(
        default=False, description="a log call of the last pass failed midway (its effect is "
        "unknown): Prefect is read back before those lines are written again")
