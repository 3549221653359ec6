"""Group commit for SQLite: one thread per process writes every waiting report in one go.

SQLite has one writer at a time and a commit costs about as much as the inserts it commits, so
with many jobs reporting at once the database, not the CPU, sets the pace. Request threads hand
their prepared rows to this writer and wait; it takes everything waiting (up to `MAX_BATCH`),
inserts it in one transaction and commits, then answers each. Nothing is answered before its
commit, so an acknowledged report survives a crash exactly as before. If any report of a batch
hits the idempotency constraint, the batch is rolled back and its reports are stored one by one
through the ordinary path, which answers a replay with the first answer.

PostgreSQL does not use it: there concurrent transactions commit in parallel.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from container_mapping.service.errors import ServiceError
from container_mapping.service.ingestion import service

log = logging.getLogger(__name__)
MAX_BATCH = 128
WAIT_SECONDS = 60.0

_Item = tuple[service.Submission, "concurrent.futures.Future[service.Stored]"]


class GroupWriter:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    def store(self, submission: service.Submission) -> service.Stored:
        future: concurrent.futures.Future[service.Stored] = concurrent.futures.Future()
        self._queue.put((submission, future))
        try:
            return future.result(WAIT_SECONDS)
        except concurrent.futures.TimeoutError as err:
            raise ServiceError(
                503, "the database is too busy to store the report; retry later",
                headers={"Retry-After": "5"},
            ) from err  # fmt: skip

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as err:  # noqa: BLE001 (every waiting request must get an answer)
                log.exception("the report writer failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)

    def _write(self, batch: list[_Item]) -> None:
        prepared = [service.prepare(submission) for submission, _ in batch]
        with self.sessions() as session:
            try:
                service.insert(session, prepared)
            except IntegrityError:
                session.rollback()
                self._one_by_one(session, batch)
                return
        for (_, future), done in zip(batch, prepared):
            future.set_result(service.Stored(done.answer, replayed=False))

    def _one_by_one(self, session: Session, batch: list[_Item]) -> None:
        for submission, future in batch:
            try:
                future.set_result(service.store(session, submission))
            except Exception as err:  # noqa: BLE001 (its own request reports it)
                session.rollback()
                future.set_exception(err)
