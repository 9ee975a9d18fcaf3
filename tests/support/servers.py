"""Real Redis and PostgreSQL for tests: the ones on localhost when they run, else throwaway servers
started from the installed binaries in a temporary folder."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Sockets behind ``refused_port``: bound for the whole run, never listening.
_REFUSING: list[socket.socket] = []


def refused_port() -> int:
    """A localhost port that refuses connections for the rest of the run: a socket bound to it and never
    listening is held here, so no server can take the port meanwhile (a port that was merely free when a module
    was imported may be some test server's by the time its tests run)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _REFUSING.append(s)
    return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@contextlib.contextmanager
def throwaway_redis(port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start a private redis-server (no persistence) and yield its URL and process."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = port or free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait(10)


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"{name} is not installed")
    return found


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """initdb + pg_ctl in a temporary folder; yields a SQLAlchemy URL (psycopg driver)."""
    tmp = tempfile.mkdtemp(prefix="interlock-pg-")
    port = free_port()
    env = dict(os.environ)
    user_args: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as the 'postgres' system user.
        shutil.chown(tmp, "postgres")
        user_args = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*user_args, _pg_bin("initdb"), "-D", f"{tmp}/data", "-U", "postgres", "-A", "trust"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    subprocess.run(
        [
            *user_args,
            _pg_bin("pg_ctl"),
            "-D",
            f"{tmp}/data",
            "-l",
            f"{tmp}/log",
            "-w",
            "start",
            "-o",
            f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*user_args, _pg_bin("pg_ctl"), "-D", f"{tmp}/data", "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server at ``server_url``; dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"interlock_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn, contextlib.suppress(Exception):
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
