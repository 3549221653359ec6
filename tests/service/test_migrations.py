"""Migrations: an empty database upgraded to head is exactly what the models describe."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from container_mapping.service import database, migrations
from container_mapping.service.models import Base
from tests.service.server import ROOT


def test_head_matches_the_models(database_url: str) -> None:
    engine = database.make_engine(database_url)
    try:
        migrations.upgrade(engine)
        migrations.upgrade(engine)  # a second start finds nothing to do
        with engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert {"organizations", "reports", "images", "alembic_version"} <= tables
    finally:
        engine.dispose()


def test_db_upgrade_command(tmp_path: object, database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "container_mapping", "db", "upgrade", "--database", database_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert migrations.head() in done.stdout
