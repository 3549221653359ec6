"""Group commit: every report waiting is written in one transaction, one commit for them all.

A commit costs about as much as the inserts it commits (SQLite has one writer at a time;
PostgreSQL waits for its log to reach the disk), so with many jobs reporting at once the
commits, not the work, would set the pace. Ingestion routes hand their submissions to this
writer and await the answer; it takes everything waiting (up to `MAX_BATCH`), inserts it in one
transaction and commits, then answers each. Nothing is answered
before its commit, so an acknowledged report survives a crash of the process.

On SQLite the writes run on the event loop itself, not in a thread. A writer thread costs more
than the writing: each time SQLite's driver lets go of the GIL the loop's thread takes it, and
handing it back and forth cost about 1 ms of CPU a report (measured: 3.3 ms a report with a
thread, 1.5 ms without; `bench/service.py`). A write never waits on the loop for the database
lock: its connection opens `BEGIN IMMEDIATE` with no busy timeout, and when another process (or
a thread of this one, see `database.writing`) holds the lock, the writer sleeps asynchronously
and tries again, while new reports keep joining the next batch.

Checkpoints (copying the write-ahead log back into the database file, with an fsync) are taken
off the writer's path: its connection never checkpoints on commit, and a checkpoint runs in a
thread once a second while reports arrive (PASSIVE: it never waits for, or blocks, a writer).
Checkpointing on commit made every hundredth batch wait for the disk on the event loop, and
cost more than half of a report's database time (0.96 → 0.41 ms a report, `bench/service.py`).

If a report of a batch hits the idempotency constraint, the batch is rolled back and its
reports are stored one by one through the ordinary path (in a thread: a retry is rare), which
answers a replay with the first answer.

On PostgreSQL a batch is written in a thread (its driver blocks), one thread hop a batch
rather than one a report; several processes' writers commit in parallel. Batching took it from
135 to 349 reports/s (`bench/service.py`, one process; 228 to 541 with two).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from container_mapping.service import database
from container_mapping.service.errors import ServiceError
from container_mapping.service.ingestion import service

log = logging.getLogger(__name__)
MAX_BATCH = 256
WAIT_SECONDS = 60.0
FIRST_BACKOFF = 0.001
MAX_BACKOFF = 0.004
CHECKPOINT_SECONDS = 1.0

_Item = tuple[service.Submission, "asyncio.Future[service.Stored]"]


def _too_busy() -> ServiceError:
    return ServiceError(
        503, "the database is too busy to store the report; retry later",
        headers={"Retry-After": "5"},
    )  # fmt: skip


@dataclass
class _OnLoop:
    """The writer's state on one event loop (a test client may run the app on several)."""

    loop: asyncio.AbstractEventLoop
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[_Item] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the writer, checkpoints


class GroupWriter:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        """`engine` is the service's; on SQLite the writer opens its own connection to the file."""
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self.writer = database.make_sqlite_writer(engine.url) if sqlite else None
        self.sessions = sessions
        self._on: Optional[_OnLoop] = None
        self._written = False  # since the last checkpoint

    async def store(self, submission: service.Submission) -> service.Stored:
        """The submission stored (or its first answer), once the writer has committed it."""
        loop = asyncio.get_running_loop()
        on = self._on
        if on is None or on.loop is not loop or on.tasks[0].done():
            on = self._on = self._start(loop)
        future: asyncio.Future[service.Stored] = loop.create_future()
        on.pending.append((submission, future))
        on.wakeup.set()
        return await future  # the writer answers within WAIT_SECONDS, 503 when it cannot

    def _start(self, loop: asyncio.AbstractEventLoop) -> _OnLoop:
        on = _OnLoop(loop)
        on.tasks = [
            loop.create_task(self._run(on), name="report-writer"),
            loop.create_task(self._checkpoints(), name="sqlite-checkpoints"),
        ]
        return on

    async def _run(self, on: _OnLoop) -> None:
        while True:
            await on.wakeup.wait()
            on.wakeup.clear()
            while on.pending:
                batch = on.pending[:MAX_BATCH]
                del on.pending[:MAX_BATCH]
                try:
                    await self._write(on.loop, batch)
                except Exception as err:  # noqa: BLE001 (every waiting request must get an answer)
                    log.exception("the report writer failed")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)

    async def _write(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        prepared = [service.prepare(submission) for submission, _ in batch]
        try:
            await self._insert(prepared)
        except IntegrityError:
            await run_in_threadpool(self._one_by_one, loop, batch)
            return
        for (_, future), done in zip(batch, prepared):
            if not future.done():
                future.set_result(service.Stored(done.answer, replayed=False))

    async def _insert(self, prepared: list[service.Prepared]) -> None:
        """One transaction for the whole batch; on SQLite retried while another writer holds
        the lock, elsewhere in a thread."""
        if self.writer is None:
            await run_in_threadpool(self._insert_in_thread, prepared)
            return
        deadline = time.monotonic() + WAIT_SECONDS
        backoff = FIRST_BACKOFF
        while True:
            if database.SQLITE_WRITER.acquire(blocking=False):
                try:
                    with self.writer.begin() as connection:
                        service.insert_rows(connection, prepared)
                    self._written = True
                    return
                except OperationalError as err:
                    if not database.is_locked(err):
                        raise
                finally:
                    database.SQLITE_WRITER.release()
            if time.monotonic() > deadline:
                raise _too_busy()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _insert_in_thread(self, prepared: list[service.Prepared]) -> None:
        with self.engine.begin() as connection:
            service.insert_rows(connection, prepared)

    async def _checkpoints(self) -> None:
        if self.writer is None:
            return  # PostgreSQL checkpoints on its own
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            if self._written:
                self._written = False
                try:
                    await run_in_threadpool(database.checkpoint, self.engine)
                except Exception:  # noqa: BLE001 (the next one tries again)
                    log.warning("a WAL checkpoint failed; the next one tries again", exc_info=True)

    def _one_by_one(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        """Each report in a transaction of its own, answering replays (runs in a thread)."""
        with self.sessions() as session:
            for submission, future in batch:
                try:
                    stored = service.store(session, submission)
                except Exception as err:  # noqa: BLE001 (its own request reports it)
                    session.rollback()
                    loop.call_soon_threadsafe(_settle, future, None, err)
                else:
                    loop.call_soon_threadsafe(_settle, future, stored, None)


def _settle(
    future: asyncio.Future[service.Stored],
    stored: Optional[service.Stored],
    error: Optional[BaseException],
) -> None:
    if future.done():
        return
    if stored is not None:
        future.set_result(stored)
    else:
        future.set_exception(error or RuntimeError("no answer"))
