"""The id of the HTTP request being served, for the records written while it runs.

Set by the API's access-log middleware (``api/access_log.py``); read by the audit writer,
which stores it with each record, so an access-log line leads to what the request changed.
Empty outside a request (workers, sweepers, the CLI).
"""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("rehab_request_id", default="")
