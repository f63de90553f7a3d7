"""Tables and pure rules. Importing this package registers every table on SQLModel.metadata."""

from models.agencies import Agency, AgencyAnswer, AgencyRequest
from models.audit import AuditEvent
from models.clock import ClockState
from models.heartbeats import ProcessBeat
from models.jobs import Job
from models.mirror import RouteMirror
from models.notifications import Notification
from models.person_file import (
    ApplicationRecord,
    ConsentVersion,
    DisabilityRecord,
    IpraRecord,
    PersonDetail,
)
from models.persons import Person
from models.providers import ProviderChoice
from models.route_life import ParticipantRefusal, RouteTimer
from models.routes import Route, Step
from models.staff import SigninAttempt, StaffSession, StaffUser
from models.suspension import StepSuspension
from models.timers import CalendarStamp, Escalation, Timer

__all__ = [
    "Agency",
    "AgencyAnswer",
    "AgencyRequest",
    "ApplicationRecord",
    "AuditEvent",
    "CalendarStamp",
    "ClockState",
    "ConsentVersion",
    "DisabilityRecord",
    "Escalation",
    "IpraRecord",
    "Job",
    "Notification",
    "ParticipantRefusal",
    "Person",
    "PersonDetail",
    "ProcessBeat",
    "ProviderChoice",
    "Route",
    "RouteMirror",
    "RouteTimer",
    "SigninAttempt",
    "StaffSession",
    "StaffUser",
    "Step",
    "StepSuspension",
    "Timer",
]
