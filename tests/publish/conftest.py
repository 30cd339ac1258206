"""A real, throw-away PostgreSQL server for the JDBC hand-off's tests: Debian's server programs
(initdb, pg_ctl), a cluster in a temporary folder that trusts local connections, listening on
127.0.0.1 on a free port, stopped and removed at the end of the session. Without the programs the
fixture fails and names the fix (scripts/setup.sh installs them): a skipped database test would
look like a passing one."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_USER = "crmlake"
PG_DATABASE = "crm"
# PostgreSQL refuses to run as root; Debian's package creates this account for its server.
SERVER_ACCOUNT = "postgres"


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: ``pg_config --bindir``, Debian's per-version folder, or PATH."""
    candidates = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    bindir: Path
    port: int
    user: str = PG_USER
    database: str = PG_DATABASE

    @property
    def url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def sql(self, text: str) -> str:
        """Run SQL with psql (independent of the code under test); the output, unaligned."""
        done = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-At",
                "-c",
                text,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"psql failed on {text!r}: {done.stderr}")
        return done.stdout.strip()


@pytest.fixture(scope="session")
def postgres():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found (pg_config --bindir, "
            "/usr/lib/postgresql/*/bin, PATH): run scripts/setup.sh, which installs Debian's postgresql package"
        )
    as_server: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="crmlake-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            pytest.fail(
                f"running as root, PostgreSQL needs the unprivileged account '{SERVER_ACCOUNT}': run scripts/setup.sh"
            )
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_server = ["runuser", "-u", SERVER_ACCOUNT, "--"]
    data, log = folder / "data", folder / "server.log"
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_server, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(args)} failed: {done.stdout}{done.stderr}{server_log}")

    # -N: no fsync at init; -F: none while running either (a throw-away cluster)
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-locale", "-N")
    options = f"-F -k {folder} -h 127.0.0.1 -p {port}"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, PG_DATABASE)
        yield Postgres(bindir, port)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
