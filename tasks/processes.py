"""Starting the product's own processes (API, worker, simulated agencies) as subprocesses,
and waiting until they answer. Used by the demo, the benchmark and the kill tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One child process running ``rehab <args>`` with its output in a log file."""

    def __init__(self, name: str, args: list[str], *, env: Mapping[str, str], log_dir: Path,
                 health_url: str | None = None) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.health_url = health_url
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *self.args], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.health_url:
            wait_http(self.health_url, timeout=timeout, proc=self.popen, name=self.name,
                      log_path=self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, no goodbye (crash tests)."""
        if self.popen is not None and self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None or not self.alive():
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes] | None = None,
              name: str = "process", log_path: Path | None = None) -> None:
    """Poll ``url`` until it answers 2xx (a process start-up wait, not business time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not answer at {url} within {timeout:.0f}s")
