"""Compatibility suite: drives a real kontor server with the official HubSpot Python client.

The session starts its own server (binary from ``KONTOR_BIN``) on a free local port with a
fresh data folder, and every test gets its own freshly created account, so tests never see
each other's records. ``KONTOR_DATABASE_*`` variables reach the binary through the inherited
environment, which runs the same suite against PostgreSQL.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from hubspot import HubSpot

from helpers import make_client

# The release build of this workspace (in CARGO_TARGET_DIR when that is set).
_TARGET = os.environ.get(
    "CARGO_TARGET_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "target"),
)
KONTOR_BIN = os.environ.get("KONTOR_BIN", os.path.join(_TARGET, "release", "kontor"))
STARTUP_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Webhooks go to receivers on this machine in these tests, and are retried within a second.
WEBHOOKS_ENV = {
    "KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
    "KONTOR_WEBHOOKS_RETRY_BASE_MS": "200",
}


class Server:
    # No API rate limits unless a test starts a server with its own (`KONTOR_API_LIMITS`);
    # `env` adds variables of its own (`KONTOR_WEBHOOKS_*`) to the server's environment.
    def __init__(self, binary: str, api_limits: str = "off", env: dict | None = None):
        self.binary = binary
        self.api_limits = api_limits
        self.env = {**WEBHOOKS_ENV, **(env or {})}
        self.data_dir = tempfile.mkdtemp(prefix="kontor-compat-")
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, stdin: str = "") -> str:
        cmd = [self.binary, "--data-dir", self.data_dir, *args]
        res = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}"
            )
        return res.stdout.strip()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def start(self) -> None:
        last_error = ""
        # A port found free can be taken before the server binds it; try a few.
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--data-dir",
                    self.data_dir,
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KONTOR_API_LIMITS": self.api_limits, **self.env},
            )
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._healthy():
                    return
                time.sleep(0.05)
            last_error = self._tail_log()
            self.stop()
        raise RuntimeError(f"kontor did not become healthy:\n{last_error}")

    def _tail_log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Ends the server at once (SIGKILL), as a crash would; `start` runs it again on the
        same data folder (on a new port)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.stop()

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Account:
    """An account with one API token and a strict client using it."""

    server: Server
    id: int
    token: str
    client: HubSpot

    def create_user(self, email: str, first_name: str = "", last_name: str = "") -> int:
        """Creates a user (which also makes them an owner); returns the user id."""
        out = self.server.cli(
            "admin",
            "user",
            "create",
            "--account",
            str(self.id),
            "--email",
            email,
            "--role",
            "user",
            "--first-name",
            first_name,
            "--last-name",
            last_name,
            "--generate-password",
        )
        return int(out.splitlines()[0])


def create_account(server: Server, name: str = "") -> Account:
    """A fresh enterprise account in the `us` region with its own (operator-made) token."""
    name = name or f"compat-{uuid.uuid4().hex[:10]}"
    account_id = int(
        server.cli(
            "admin",
            "account",
            "create",
            "--name",
            name,
            "--region",
            "us",
            "--tier",
            "enterprise",
        ).splitlines()[-1]
    )
    token = server.cli(
        "admin", "token", "create", "--account", str(account_id), "--name", "compat"
    ).splitlines()[-1]
    return Account(server, account_id, token, make_client(server.base_url, token))


@contextlib.contextmanager
def running(api_limits: str = "off", env: dict | None = None):
    """A started server, stopped and its data folder removed afterwards."""
    if not os.path.exists(KONTOR_BIN):
        pytest.exit(f"kontor binary not found at {KONTOR_BIN} (set KONTOR_BIN)", 2)
    srv = Server(KONTOR_BIN, api_limits=api_limits, env=env)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.cleanup()


@pytest.fixture(scope="session")
def server():
    with running() as srv:
        yield srv


@pytest.fixture(scope="session")
def base_url(server) -> str:
    return server.base_url


@pytest.fixture
def new_account(server):
    """Factory: a fresh enterprise account in the `us` region with its own token."""

    def make(name: str = "") -> Account:
        return create_account(server, name)

    return make


@pytest.fixture
def account(new_account) -> Account:
    return new_account()


@pytest.fixture
def client(account) -> HubSpot:
    return account.client


@pytest.fixture
def other_account(new_account) -> Account:
    return new_account()
