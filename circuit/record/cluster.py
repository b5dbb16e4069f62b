"""A throwaway PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``pg_ctl`` on 127.0.0.1.

``initdb`` refuses to run as root, so when the current user is root the
cluster is created and run as a dedicated system user (``postgres`` when it
exists) through ``runuser``. The cluster listens on a free TCP port of
127.0.0.1 only, with ``wal_level=logical`` (for wal2json) and ``fsync=off``
(it is thrown away). :func:`find_bindir` says where the server binaries are
and :func:`missing_reason` why a cluster cannot be made here, so a test can
skip (or fail in CI) with that message.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CircuitError

SERVER_USER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (newest version first)."""
    env = os.environ.get("SSP_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def has_wal2json(bindir: Path) -> bool:
    """True when the server's library directory holds the wal2json output plugin."""
    try:
        out = subprocess.run(
            [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True
        )
        libdir = Path(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        libdir = bindir.parent / "lib"
    return (libdir / "wal2json.so").exists()


def missing_reason() -> str | None:
    """Why no cluster can be started here (None when everything needed is installed)."""
    bindir = find_bindir()
    if bindir is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql-15)"
    if not has_wal2json(bindir):
        return "wal2json not installed (apt-get install postgresql-15-wal2json)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} system user to run initdb"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``dsn`` connects as its superuser to database ``postgres``."""

    root: Path
    port: int
    user: str
    bindir: Path
    _as_user: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop the server (immediately) and delete its files."""
        subprocess.run(
            [
                *self._as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cluster(*, settings: dict[str, str] | None = None, timeout: float = 30.0) -> Cluster:
    """``initdb`` and start a cluster in a new temporary directory (see the module docstring)."""
    reason = missing_reason()
    if reason is not None:
        raise CircuitError(reason, location="postgres")
    bindir = find_bindir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="ssp-pg-"))
    as_user: list[str] = []
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", SERVER_USER, "--"]
        user = SERVER_USER
    data = root / "data"
    port = free_port()
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{root}'",
        "wal_level": "logical",
        "max_replication_slots": "10",
        "max_wal_senders": "10",
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "on",
        "max_connections": "50",
        "shared_buffers": "64MB",
    }
    conf.update(settings or {})

    def run(cmd: list[str]) -> None:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise CircuitError(
                f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip()[-500:]}",
                location="postgres",
            )

    run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]
    )
    with open(data / "postgresql.conf", "a", encoding="utf-8") as out:
        out.writelines(f"{key} = {value}\n" for key, value in conf.items())
    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        ]
    )
    cluster = Cluster(root, port, user, bindir, as_user)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return cluster
        except OSError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise CircuitError(
                    "the server did not accept connections", location="postgres"
                ) from None
            time.sleep(0.05)
