"""The product's configuration: one pydantic-settings object, every field documented.

Values come from environment variables prefixed ``REHAB_`` (e.g. ``REHAB_DATABASE_URL``) or a
``.env`` file. Outside ``development``/``test`` the settings refuse placeholder secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAR_DIR = PROJECT_ROOT / "var"
PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Every setting of the product (env prefix ``REHAB_``)."""

    model_config = SettingsConfigDict(env_prefix="REHAB_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "development", description="Deployment kind; production refuses placeholder secrets."
    )
    var_dir: Path = Field(
        DEFAULT_VAR_DIR, description="Directory for the embedded SQLite files and Prefect home."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the system of record. Empty: SQLite in var_dir/rehab.db. "
        "Production: postgresql+psycopg://user@host/db.",
    )
    prefect_database_url: str = Field(
        "",
        description="Database of the Prefect server the product starts itself. Empty: SQLite in "
        "var_dir/prefect. PostgreSQL: postgresql+asyncpg://user@host/db.",
    )
    prefect_api_url: str = Field(
        "",
        description="The demo uses the Prefect server at this API URL instead of starting "
        "one (workers and the sweeper read PREFECT_API_URL as Prefect does).",
    )
    prefect_mirror: bool = Field(
        True, description="Mirror every route into Prefect as one flow run per person."
    )
    mirror_delay_seconds: float = Field(
        1.0, ge=0, description="A route's Prefect mirror runs this many seconds (real time) "
        "after its last transition: transitions that come together (an answer, the next "
        "request, its delivery) are mirrored once. 0: at once.")
    mirror_max_lag_seconds: float = Field(
        30.0, ge=0, description="While the workers are busy with the routes' own work (20 "
        "jobs of it due, or one left unclaimed for over a second), the Prefect mirror gives "
        "way: it mirrors only routes whose mirror has waited this many seconds, and catches "
        "up with the rest after. 0: it never gives way.")
    mirror_nice: int = Field(
        10, ge=0, le=19, description="How much lower the CPU priority of `rehab mirror` is "
        "than the other processes' (nice): on a busy host the routes' work goes first and "
        "the Prefect mirror catches up after. 0: the same priority.")
    template_dir: str = Field(
        "", description="A further directory of route template files "
        "(<code>-v<version>.toml, docs/route-templates.md): its files are added to the "
        "package's (models/route_templates), a file of the same name replaces the package's. "
        "Read at start-up by rehab api, worker, sweeper and import, which refuse to start on "
        "a bad file, naming the file, the step and the rule. Empty: the package's only.")
    api_host: str = Field("127.0.0.1", description="Host the HTTP API binds to.")
    api_port: int = Field(
        8040, gt=0, le=65535, description="Port of the HTTP API (webhooks, pages, supervisor)."
    )
    public_base_url: str = Field(
        "",
        description="Base URL agencies use to reach our webhooks; empty: http://api_host:api_port.",
    )
    sender_region: str = Field(
        "39", description="Subject code of the ministry that sends interagency requests."
    )
    webhook_tolerance_seconds: int = Field(
        300, gt=0, description="Replay window of signed webhooks (Standard Webhooks: 5 minutes)."
    )
    webhook_max_body_bytes: int = Field(
        256 * 1024, gt=0, description="Largest accepted webhook body; larger bodies get 413."
    )
    send_timeout_seconds: float = Field(
        10.0, gt=0, description="HTTP timeout of a request to an agency."
    )
    send_backoff_base_seconds: float = Field(
        1.0, gt=0,
        description="First retry delay after a network error or 5xx; doubles each attempt.",
    )
    send_backoff_max_seconds: float = Field(300.0, gt=0, description="Cap of the retry delay.")
    job_lease_seconds: float = Field(
        30.0, gt=0, description="How long a worker holds a claimed job before another may take it."
    )
    job_max_attempts: int = Field(
        100, gt=0,
        description="Attempts of a job (a send, a cancel notice, an answer, a mirror update) "
        "after which it goes dead: no longer retried, shown by `rehab jobs` and the "
        "supervisor's dead-jobs API until a person retries it. With the default backoff "
        "(1 s doubling, capped at 300 s) 100 attempts span about 8 hours.")
    worker_batch_size: int = Field(200, gt=0, description="Jobs a worker claims at once.")
    worker_txn_answers: int = Field(
        1, gt=0,
        description="Answers a worker applies per transaction (short lock holds on SQLite). "
        "SQLite only: on PostgreSQL it must be 1 — a transaction holding one route's lock "
        "would take the next answer's step lock, against another worker's batch doing the "
        "reverse (a deadlock; more than one also measured slower there).",
    )
    worker_concurrency: int = Field(
        64, gt=0, description="Agency requests a worker sends at once."
    )
    worker_connections_per_agency: int = Field(
        16, gt=0, description="HTTP connections a worker keeps to one agency (its origin); "
        "requests beyond them wait for a free one (a pool per agency: a slow agency holds "
        "only its own).")
    worker_send_batches: int = Field(
        4, gt=0, description="Batches of agency requests a worker keeps on the wire at once "
        "while it goes on applying answers.")
    worker_idle_poll_seconds: float = Field(
        0.02, gt=0, description="How often an idle worker looks for new jobs (seconds)."
    )
    reminder_days_before: int = Field(
        1, ge=0,
        description="Default: remind the agency this many working days before its deadline "
        "(0: no reminder).",
    )
    escalate_after_days: int = Field(
        2, ge=1,
        description="Default: escalate to the supervisor this many working days after overdue "
        "(at least 1: level 2 comes after level 1).",
    )
    provider_rules: dict[str, Literal["nearest", "least_loaded"]] = Field(
        {},
        description="Per region code, how a provider is picked when the person has chosen "
        "none (001 Регламент п.15 пп.2): nearest (an agency of the person's district) or "
        "least_loaded (fewest open requests); a region not listed: least_loaded. JSON, e.g. "
        "{\"39\": \"nearest\"}.",
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server for e-mail notifications.")
    smtp_port: int = Field(25, gt=0, le=65535, description="SMTP port.")
    smtp_from: str = Field("noreply@rehab.example", description="Sender address of e-mails.")
    smtp_enabled: bool = Field(False, description="Send e-mail for real (else record only).")
    notify_max_attempts: int = Field(
        5, gt=0, description="Notification sending attempts before it is marked failed."
    )
    notify_backoff_base_seconds: float = Field(
        30.0, gt=0, description="First notification retry delay; doubles each attempt."
    )
    notify_backoff_max_seconds: float = Field(
        3600.0, gt=0, description="Cap of that retry delay."
    )
    notify_timeout_seconds: float = Field(
        5.0, gt=0,
        description="Timeout of one channel operation (SMTP connect, each SMTP command); keep "
        "it well under job_lease_seconds.",
    )
    notify_concurrency: int = Field(
        4, gt=0,
        description="Notifications a worker sends at once, in a lane of their own beside "
        "routes (a slow channel never stalls answers and requests).",
    )
    clock_cache_seconds: float = Field(
        0.05, ge=0,
        description="How long a process may reuse its last reading of the business clock "
        "(seconds of real time). 0: read it on every use, so a clock move is seen at once "
        "by every process (the demo sets 0: it moves business time many times a second).",
    )
    allow_clock_control: bool = Field(
        True, description="Expose the movable clock over HTTP (demo, tests). Off in production."
    )
    staff_token_ttl_days: int = Field(
        90, gt=0, le=3650,
        description="Days a staff token is valid from its creation or rotation (real time); "
        "an expired or revoked token gets 401 (`rehab staff rotate` issues a new one).")
    heartbeat_seconds: float = Field(
        10.0, gt=0, le=300,
        description="How often a worker writes its heartbeat (seconds of real time); the "
        "sweeper beats after each sweep. Readiness calls a process silent after three missed "
        "beats.")
    log_format: Literal["plain", "json"] = Field(
        "plain", description="Log lines as plain text, or as one JSON object a line "
        "(for a log collector).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the product's own loggers (third-party libraries log "
        "warnings and errors only).")
    allow_http_agency_endpoints: bool = Field(
        False, description="Production only: accept agency endpoints over plain http:// (a "
        "closed network). Off: production refuses them, requests carry personal data.")
    admin_token: SecretStr = Field(
        SecretStr(PLACEHOLDER), description="Bearer token of the built-in administrator: "
        "moves the business clock where clock control is on; the route, application and "
        "supervisor APIs refuse it (403) — people act with staff tokens."
    )

    @model_validator(mode="after")
    def _one_answer_per_transaction_on_postgresql(self) -> Settings:
        """Applying an answer locks its step, then its route (``engine.infra.locks``: no
        step lock is taken while a route's is held). A batch of answers in one transaction
        breaks that order at its second answer, so two workers' batches may deadlock on
        PostgreSQL (row locks; SQLite serialises writers and cannot)."""
        if self.worker_txn_answers > 1 and self.database_url.strip().lower().startswith(
                "postgresql"):
            raise ValueError(f"worker_txn_answers: must be 1 on PostgreSQL (got "
                             f"{self.worker_txn_answers}); batching answers in one "
                             "transaction can deadlock two workers there")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment == "production":
            if self.admin_token.get_secret_value() == PLACEHOLDER:
                raise ValueError("admin_token: a placeholder secret is refused in production")
            if self.allow_clock_control:
                raise ValueError("allow_clock_control: must be false in production")
            if not self.public_base_url.strip():
                raise ValueError("public_base_url: required in production (the URL agencies "
                                 "call back, e.g. https://rehab.example)")
            if not self.public_base_url.strip().lower().startswith("https://"):
                raise ValueError("public_base_url: must be https:// in production (agencies "
                                 "send answers with personal data to it; TLS ends at the "
                                 "reverse proxy, docs/operations.md)")
            if not self.database_url.strip():
                raise ValueError("database_url: required in production "
                                 "(postgresql+psycopg://user@host/db)")
            if self.database_url.strip().lower().startswith("sqlite"):
                raise ValueError("database_url: SQLite is for development; production needs "
                                 "PostgreSQL (postgresql+psycopg://user@host/db)")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.var_dir / 'rehab.db'}"

    @property
    def effective_public_base_url(self) -> str:
        return self.public_base_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
