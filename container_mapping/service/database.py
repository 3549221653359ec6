"""Storage: one engine per process, sessions per request, the same code on SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=NORMAL`: a commit is in the log before the call
returns, so a killed process loses nothing it acknowledged (a power cut may lose the last
commits; the cost of an fsync per commit buys nothing against a crash of the service). A busy
timeout lets several processes share one file. PostgreSQL (`postgresql+psycopg://`) is for
several service processes behind a load balancer; they keep no state of their own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Past this many frames (64 MiB of 4 KiB pages) a checkpoint also restarts the log, and the
#: first write after a restart cuts the file back to `WAL_FILE_LIMIT` bytes.
WAL_RESTART_FRAMES = 16_384
WAL_FILE_LIMIT = 64 * 1024 * 1024
#: How long a restart may wait for the writer and readers of the moment; it keeps new writers
#: out while it waits, so it gives up soon and the next checkpoint tries again.
WAL_RESTART_WAIT_MS = 100

# Named constraints, so migrations name them the same on every database (and SQLite's batch
# mode can find them again).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every table of the service."""

    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`, with SQLite set up for concurrent use by threads and processes."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_FILE_LIMIT}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


SQLITE_WRITER = threading.Lock()


def writing(session: Session) -> contextlib.AbstractContextManager[object]:
    """Hold this around a write transaction: on SQLite, one writer thread per process at a time.

    SQLite lets one connection write at a time and makes the others wait in its busy handler,
    which sleeps in steps of up to 100 ms: with a few threads contending, most of a second goes
    to sleeping. Queueing the process's writers on a lock hands the database over at once;
    other processes still wait in the busy handler. PostgreSQL needs no such thing.
    """
    if session.get_bind().dialect.name == "sqlite":
        return SQLITE_WRITER
    return contextlib.nullcontext()


def make_sqlite_writer(url: str | URL) -> Engine:
    """An engine for the ingestion writer (`ingestion.writer`): explicit `BEGIN IMMEDIATE`
    transactions that fail at once with "database is locked" rather than wait, so the writer
    can wait without blocking its event loop.

    pysqlite begins transactions on its own and late; SQLAlchemy's documented recipe for
    pysqlite turns that off (`isolation_level = None`) and emits the BEGIN itself.
    """
    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=1)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # `checkpoint` does it, off the loop
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def checkpoint(engine: Engine, restart_frames: int = WAL_RESTART_FRAMES) -> tuple[int, bool]:
    """Copy the write-ahead log back into the database file; restart the log when it is long.

    The copy is PASSIVE: it never waits for, or blocks, a writer. But SQLite starts the log
    over only when a write begins with every frame already copied, which under steady load
    never happens (writers add frames while the copy runs): under `bench/service.py` the log
    grew by about 50 MB a second, without end. So past `restart_frames` frames a RESTART
    checkpoint follows: it finishes the copy and makes the next write start the log over,
    holding new writers back meanwhile (they retry, see `ingestion.writer`) for at most
    `WAL_RESTART_WAIT_MS`. (TRUNCATE, which also empties the file at once, held them back
    longer: a tenth fewer reports a second.)

    Returns the frames the log held, and whether it was restarted.
    """
    with engine.connect() as connection:
        # a row of (busy, frames in the log, frames copied)
        frames = int(connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1])
        if frames < restart_frames:
            return frames, False
        connection.exec_driver_sql(f"PRAGMA busy_timeout={WAL_RESTART_WAIT_MS}")
        try:
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)").one()[0]
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return frames, busy == 0


def is_locked(err: Exception) -> bool:
    """Whether a SQLite error says another connection holds the lock."""
    text = str(getattr(err, "orig", err)).lower()
    return "database is locked" in text or "database is busy" in text


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def get_session(request: Request) -> Iterator[Session]:
    """The per-request session dependency; the route commits, anything else is rolled back."""
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as session:
        yield session
