"""`container-mapping serve` and `container-mapping db upgrade`: the service's commands.

Registered by the CLI without importing anything heavy: FastAPI, uvicorn, SQLAlchemy and
Alembic are imported inside the handlers, and when the `service` extra is missing the
command says what to install instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXTRA_HINT = (
    "container-mapping: the service needs its extra: pip install 'container-mapping[service]'"
)
_NEEDED = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "jwt", "yaml")


def register(commands: Any) -> None:
    """Add `serve` and `db` to the CLI's subcommands."""
    serve = commands.add_parser(
        "serve",
        help="run the mapping service (HTTP API, storage, trust)",
        description="Run the mapping service. With no configuration: 127.0.0.1:8080, SQLite "
        "in ./mappings.db. The database is migrated at start.",
    )
    _common(serve)
    serve.add_argument(
        "--listen", metavar="HOST:PORT", default=os.environ.get("CONTAINER_MAPPING_LISTEN"),
        help="address to listen on [$CONTAINER_MAPPING_LISTEN; default 127.0.0.1:8080]",
    )  # fmt: skip
    serve.add_argument(
        "--workers", type=int, default=os.environ.get("CONTAINER_MAPPING_WORKERS"),
        help="service processes [$CONTAINER_MAPPING_WORKERS; default 1]",
    )  # fmt: skip
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="manage the service's database")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="migrate the database to the latest revision")
    _common(upgrade)
    upgrade.set_defaults(handler=_db_upgrade)
    revision = actions.add_parser(
        "revision", help="(developers) write a new migration from the models' changes"
    )
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--rev-id", help="revision id, such as 0002_links")
    revision.set_defaults(handler=_db_revision)
    from container_mapping.service.links.commands import register as register_links

    register_links(commands)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=os.environ.get("CONTAINER_MAPPING_CONFIG"),
        help="YAML configuration [$CONTAINER_MAPPING_CONFIG]",
    )  # fmt: skip
    parser.add_argument(
        "--database", metavar="URL", default=os.environ.get("CONTAINER_MAPPING_DATABASE"),
        help="sqlite:///PATH or postgresql+psycopg://… [$CONTAINER_MAPPING_DATABASE]",
    )  # fmt: skip


def _missing_extra() -> bool:
    import importlib.util

    if all(importlib.util.find_spec(name) for name in _NEEDED):
        return False
    print(EXTRA_HINT, file=sys.stderr)
    return True


def _settings(args: argparse.Namespace) -> Any:
    """Settings from the file, then the environment, then these flags."""
    from container_mapping.service import config

    environ = dict(os.environ)
    for flag, name in (("database", "DATABASE"), ("listen", "LISTEN"), ("workers", "WORKERS")):
        value = getattr(args, flag, None)
        if value:
            environ[f"CONTAINER_MAPPING_{name}"] = str(value)
    return config.load(args.config, environ), environ


def _serve(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    import uvicorn

    from container_mapping.service import database, migrations

    settings, environ = _settings(args)
    engine = database.make_engine(settings.database)
    migrations.upgrade(engine)  # once, before any worker starts
    engine.dispose()
    os.environ.update({k: v for k, v in environ.items() if k.startswith("CONTAINER_MAPPING_")})
    if args.config:
        os.environ["CONTAINER_MAPPING_CONFIG"] = os.path.abspath(args.config)
    uvicorn.run(
        "container_mapping.service.app:from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    from container_mapping.service import database, migrations

    settings, _ = _settings(args)
    engine = database.make_engine(settings.database)
    try:
        migrations.upgrade(engine)
        print(f"database at revision {migrations.head()}")
    finally:
        engine.dispose()
    return 0


def _db_revision(args: argparse.Namespace) -> int:
    if _missing_extra():
        return 1
    import tempfile

    from alembic import command

    from container_mapping.service import migrations

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/scratch.db"
        command.upgrade(migrations.config(url=url), "head")
        command.revision(
            migrations.config(url=url), args.message, autogenerate=True, rev_id=args.rev_id
        )
    return 0
