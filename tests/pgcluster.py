"""A throwaway PostgreSQL cluster for the recording tests (fixtures ``pg`` and ``pg_db``).

The cluster runs as the ``postgres`` system user through ``runuser`` when the
tests run as root (``initdb`` refuses root), on a free 127.0.0.1 port with
``wal_level=logical`` and ``fsync=off``. When it cannot start, the tests that
need it FAIL under ``CI=true`` (CI installs PostgreSQL: ``.ci/run``) and skip
with the reason elsewhere. Each test gets a database of its own (``pg_db``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from circuit.errors import CircuitError
from circuit.record.cluster import Cluster, missing_reason, start_cluster

_counter = itertools.count()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed in CI and cannot start: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session", name="pg")
def pg_fixture() -> Iterator[Cluster]:
    """A running cluster for the whole session (stopped and deleted at the end)."""
    reason = missing_reason()
    if reason is not None:
        _unavailable(reason)
    try:
        cluster = start_cluster()
    except CircuitError as err:
        _unavailable(str(err))
        raise
    with cluster:
        yield cluster


@dataclass
class Database:
    """A fresh database in the session's cluster."""

    cluster: Cluster
    name: str

    @property
    def dsn(self) -> str:
        return (
            f"host=127.0.0.1 port={self.cluster.port} user={self.cluster.user} dbname={self.name}"
        )

    def connect(self) -> object:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)


@pytest.fixture(name="pg_db")
def pg_db_fixture(pg: Cluster) -> Iterator[Database]:
    """A new, empty database; its replication slots are dropped afterwards."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield Database(pg, name)
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s AND NOT active",
            (name,),
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FIXTURES = (pg_fixture, pg_db_fixture)
"""Import these into a test module to use the fixtures there."""
