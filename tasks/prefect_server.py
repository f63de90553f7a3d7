"""A local Prefect server as a subprocess (demo, benchmarks, slow tests).

``PrefectServer(home)`` runs ``python -m prefect server start`` on 127.0.0.1 with its own
``PREFECT_HOME``, a SQLite database in that home (or any database URL, e.g.
``postgresql+asyncpg://...``), telemetry off and its log in ``home/server.log``::

    with PrefectServer(Path("/tmp/ph")) as server:
        env = server.env()  # what a client process needs (PREFECT_API_URL ...)

The server runs in its own process group; ``stop()`` terminates the group, then kills it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

__all__ = ["PrefectServer", "PrefectServerError", "free_port"]

#: Environment that keeps Prefect offline (no analytics, no phoning home).
OFFLINE_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


class PrefectServerError(RuntimeError):
    """The server did not come up (the message carries the tail of its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrefectServer:
    """A Prefect server subprocess bound to 127.0.0.1 (context manager: start/stop)."""

    def __init__(
        self, home: Path, port: int | None = None, database_url: str | None = None,
        *, nice: int = 0,
    ) -> None:
        self.home = Path(home).resolve()
        #: how much lower the server's CPU priority is than its starter's (``mirror_nice``):
        #: it serves the mirror and the coordinators' views, never a route's path
        self.nice = nice
        self.port = port if port is not None else free_port()
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        self.log_path = self.home / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def ui_url(self) -> str:
        return self.base_url

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def env(self) -> dict[str, str]:
        """Environment variables a client process (runner, flow run, CLI) needs."""
        return {
            **OFFLINE_ENV,
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
        }

    def server_env(self) -> dict[str, str]:
        """The full environment the server process is started with."""
        env = dict(os.environ)
        # A client setting inherited from the caller must not point the server elsewhere.
        env.pop("PREFECT_API_URL", None)
        env.update(OFFLINE_ENV)
        env.update({
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_LOGGING_LEVEL": env.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        })
        return env

    # -- lifecycle -----------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def healthy(self) -> bool:
        """True when GET /api/health answers 200."""
        try:
            resp = httpx.get(f"{self.api_url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def start(self, timeout: float = 90.0) -> PrefectServer:
        """Start the server and wait until /api/health answers (PrefectServerError if not)."""
        if self.is_running():
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "prefect", "server", "start",
               "--host", "127.0.0.1", "--port", str(self.port)]
        self._proc = subprocess.Popen(
            cmd, env=self.server_env(), cwd=self.home, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=partial(os.nice, self.nice) if self.nice else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._close_log()
                self._proc = None
                raise PrefectServerError(
                    f"prefect server exited with code {code}:\n{self.log_tail()}"
                )
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise PrefectServerError(
            f"prefect server not healthy after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the server's process group; kill it if it outlives ``grace`` seconds."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace)
            # Workers the server forked may outlive its main process: sweep the group.
            self._signal_group(proc.pid, signal.SIGKILL)
            self._proc = None
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the server's whole process group, no goodbye (crash tests). ``start()``
        brings it back on the same port, home and database."""
        proc = self._proc
        if proc is not None:
            self._signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            self._proc = None
        self._close_log()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"PrefectServer({self.api_url!r}, home={str(self.home)!r}, {state})"
