"""Real PostgreSQL and Redis servers for tests, started on 127.0.0.1 in a temporary folder.

`.ci/run` installs the Debian packages; on a machine without them the tests that need a server
are skipped, unless SYNAPTOROUTE_REQUIRE_SERVICES=1 (CI) turns the skip into a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE = os.environ.get("SYNAPTOROUTE_REQUIRE_SERVICES") == "1"


def unavailable(why: str) -> None:
    """Skip (or, in CI, fail) a test whose server cannot be started."""
    if REQUIRE:
        pytest.fail(f"required service unavailable: {why}")
    pytest.skip(why)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster."""

    port: int
    datadir: Path
    pg_ctl: str
    as_user: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir, ignore_errors=True)


def start_postgres() -> Postgres:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    assert initdb and pg_ctl
    as_user: list[str] = []
    datadir = Path(tempfile.mkdtemp(prefix="sr-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(datadir, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-h 127.0.0.1 -p {port} -k {datadir} -F -c max_connections=300 -c fsync=off"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(datadir), "-o", opts, "-l", str(datadir / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    _wait_port(port)
    return Postgres(port, datadir, pg_ctl, as_user)


@dataclass
class Redis:
    """A throwaway redis-server."""

    port: int
    proc: subprocess.Popen[bytes] | None
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            unavailable("redis-server is not installed (apt-get install redis-server)")
        assert exe
        self.proc = subprocess.Popen(
            [
                exe,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


def start_redis() -> Redis:
    r = Redis(free_port(), None, Path(tempfile.mkdtemp(prefix="sr-redis-")))
    r.start()
    return r
