"""SQLite's write-ahead log stays bounded under steady writes: checkpoints restart it."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import Engine

from container_mapping.service import database


def engine_with_frames(tmp_path: Path, rows: int) -> Engine:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x BLOB)")
    write(engine, rows)
    return engine


def write(engine: Engine, rows: int) -> None:
    for _ in range(rows):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", (os.urandom(3000),))


def frames_in_log(engine: Engine) -> int:
    return database.checkpoint(engine, restart_frames=1 << 30)[0]


def test_a_short_log_is_copied_and_kept(tmp_path: Path) -> None:
    engine = engine_with_frames(tmp_path, 20)
    frames, restarted = database.checkpoint(engine, restart_frames=10_000)
    assert frames >= 20 and not restarted
    assert frames_in_log(engine) == frames
    engine.dispose()


def test_a_long_log_is_restarted_by_the_next_write(tmp_path: Path) -> None:
    engine = engine_with_frames(tmp_path, 60)
    frames, restarted = database.checkpoint(engine, restart_frames=50)
    assert frames >= 60 and restarted
    write(engine, 1)
    assert frames_in_log(engine) < 5  # the write started the log over
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 61
        limit = connection.exec_driver_sql("PRAGMA journal_size_limit").scalar()
    assert limit == database.WAL_FILE_LIMIT
    engine.dispose()


def test_a_restart_gives_way_to_a_reader_and_is_tried_again(tmp_path: Path) -> None:
    engine = engine_with_frames(tmp_path, 60)
    reader = engine.connect()
    reader.exec_driver_sql("BEGIN")
    reader.exec_driver_sql("SELECT count(*) FROM t").scalar()  # holds its snapshot
    write(engine, 5)
    frames, restarted = database.checkpoint(engine, restart_frames=50)
    assert frames >= 65 and not restarted  # the reader still needs the log
    write(engine, 1)  # the restart gave up: writers are not held back
    reader.rollback()
    reader.close()
    assert database.checkpoint(engine, restart_frames=50)[1]
    write(engine, 1)
    assert frames_in_log(engine) < 5
    engine.dispose()
