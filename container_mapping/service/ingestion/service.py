"""Storing a report: one transaction, once per idempotency key, whatever arrives at once.

A report and its images are inserted in one transaction and committed before the route answers.
Two deliveries with the same key (a retry, or the same report reaching two processes at the
same instant) race on the unique constraint `(org_id, idempotency_key)`, not on a
check-then-insert: the loser's insert fails, it rolls back and answers what the winner stored.

The key the task sends stands for one attempt of one job, so it is stored scoped to the run the
token names: another run (even a hostile job of the same organization that knows the ids) can
never take a key that would make this run's report be answered "already stored" and dropped. A
second delivery of the same attempt whose body differs (post-job run again, `generatedAt`
moved on) gets the first answer too: the first report of an attempt is the one kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from container_mapping.model import ImageRecord, format_time
from container_mapping.service.database import Base, writing
from container_mapping.service.errors import ServiceError, invalid
from container_mapping.service.ingestion.models import ImageRow, ReportRow
from container_mapping.service.trust.models import PipelineCaller

log = logging.getLogger(__name__)
REPORTS = Base.metadata.tables[ReportRow.__tablename__]
IMAGES = Base.metadata.tables[ImageRow.__tablename__]
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class JobDetails:
    """What only the job itself knows (the token does not carry it): informational fields."""

    run_number: str | None = None
    repository_name: str | None = None
    job_id: str | None = None
    job_name: str | None = None
    job_attempt: str | None = None
    plan_id: str | None = None
    engine_version: str | None = None
    tool_version: str | None = None


@dataclass(frozen=True)
class Submission:
    """One delivery: who sent it, under which key, and the pushed images it carries."""

    caller: PipelineCaller
    protocol: str
    key: str
    body_sha256: str
    images: Sequence[ImageRecord]
    job: JobDetails


@dataclass(frozen=True)
class Stored:
    answer: dict[str, Any]
    replayed: bool


def idempotency_key(header: str | None, caller: PipelineCaller, body: bytes) -> str:
    """The stored key: the caller's, scoped to its run; else derived from token and body."""
    scope = f"{caller.project_id}\n{caller.pipeline_id}\n{caller.run_id}\n"
    if header is not None:
        if not header or len(header) > MAX_KEY_LENGTH or not header.isprintable():
            raise invalid(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                "Idempotency-Key",
            )
        return "key:" + hashlib.sha256(f"{scope}{header}".encode()).hexdigest()
    seed = f"{scope}{caller.token_id or caller.subject}\n".encode() + body
    return "derived:" + hashlib.sha256(seed).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """A submission's rows, ready to insert, and the answer it gets once they are committed."""

    submission: Submission
    answer: dict[str, Any]
    report_row: dict[str, Any]
    image_rows: list[dict[str, Any]]


def new_report_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, 74 random.

    Reports stored together get neighbouring ids, so the reports' primary key and the images'
    `report_id` index grow at their right edge: a batch dirties the same few pages instead of
    two random pages a report, which the commit then writes to the log.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC's variant
    return str(uuid.UUID(int=value))


def prepare(submission: Submission) -> Prepared:
    caller = submission.caller
    report_id = new_report_id()
    now = datetime.now(timezone.utc)
    answer = {
        "id": report_id,
        "organization": caller.org_id,
        "receivedAt": format_time(now),
        "images": len(submission.images),
    }
    return Prepared(
        submission,
        answer,
        _report_row(submission, report_id, now, answer),
        [_image_row(r, report_id, caller.org_id) for r in submission.images],
    )


def insert(session: Session, batch: Sequence[Prepared]) -> None:
    """Insert and commit `batch` in one transaction; IntegrityError if any key is taken."""
    with writing(session):
        insert_rows(session.connection(), batch)
        session.commit()


def insert_rows(connection: Connection, batch: Sequence[Prepared]) -> None:
    """The inserts of `batch`, in the caller's transaction."""
    # Core inserts of constant statements: compiled once, cached, parameters apart
    connection.execute(REPORTS.insert(), [p.report_row for p in batch])
    image_rows = [row for p in batch for row in p.image_rows]
    if image_rows:
        connection.execute(IMAGES.insert(), image_rows)


def store(session: Session, submission: Submission) -> Stored:
    """Insert the report and its images, or answer what the first delivery of its key got."""
    prepared = prepare(submission)
    try:
        insert(session, [prepared])
    except IntegrityError:
        session.rollback()
        return _first_answer(session, submission)
    return Stored(prepared.answer, replayed=False)


def _first_answer(session: Session, submission: Submission) -> Stored:
    row = session.execute(
        select(ReportRow.request_sha256, ReportRow.response).where(
            ReportRow.org_id == submission.caller.org_id,
            ReportRow.idempotency_key == submission.key,
        )
    ).one_or_none()
    if row is None:  # the constraint that failed was another one: not a replay
        raise ServiceError(
            503, "the report could not be stored; retry later", headers={"Retry-After": "5"}
        )
    if row.request_sha256 != submission.body_sha256:
        log.info("a second report for one job attempt (key %s) was not stored", submission.key)
    return Stored(dict(row.response), replayed=True)


def _report_row(
    submission: Submission, report_id: str, now: datetime, answer: dict[str, Any]
) -> dict[str, Any]:
    caller, job = submission.caller, submission.job
    return {
        "id": report_id,
        "org_id": caller.org_id,
        "idempotency_key": submission.key,
        "request_sha256": submission.body_sha256,
        "received_at": now,
        "protocol": submission.protocol,
        "subject": caller.subject,
        "project_id": caller.project_id,
        "project_name": caller.project_name,
        "pipeline_id": caller.pipeline_id,
        "pipeline_name": caller.pipeline_name,
        "run_id": caller.run_id,
        "run_number": job.run_number,
        "repository_uri": caller.repository_uri,
        "repository_name": job.repository_name,
        "commit": caller.commit,
        "branch": caller.ref,
        "job_id": job.job_id,
        "job_name": job.job_name,
        "job_attempt": job.job_attempt,
        "plan_id": job.plan_id,
        "engine_version": job.engine_version,
        "tool_version": job.tool_version,
        "response": answer,
    }


def _image_row(record: ImageRecord, report_id: str, org_id: str) -> dict[str, Any]:
    ref = record.reference
    return {
        "report_id": report_id,
        "org_id": org_id,
        "registry": ref.registry,
        "repository": ref.repository,
        "tag": ref.tag,
        "digest": ref.digest,
        "image_id": record.image_id,
        "pushed_at": record.pushed_at,
        "created": record.created,
        "platform": record.platform,
        "source": record.source,
        "evidence": "observed",
        "attribution": record.attribution.value,
        "verification": record.verification.value,
    }


def report(session: Session, org_id: str, report_id: str) -> dict[str, Any] | None:
    """A stored report of `org_id` with its images; another organization's is None, like none."""
    row = session.execute(
        select(ReportRow).where(ReportRow.org_id == org_id, ReportRow.id == report_id)
    ).scalar_one_or_none()
    if row is None:
        return None
    images = session.scalars(
        select(ImageRow).where(ImageRow.report_id == row.id).order_by(ImageRow.id)
    )
    fields = (
        "project_id",
        "project_name",
        "pipeline_id",
        "pipeline_name",
        "run_id",
        "run_number",
        "repository_uri",
        "repository_name",
        "commit",
        "branch",
        "job_id",
        "job_name",
        "job_attempt",
        "plan_id",
        "protocol",
    )
    return {
        "id": row.id,
        "organization": row.org_id,
        "receivedAt": format_time(_aware(row.received_at)),
        **{name: getattr(row, name) for name in fields},
        "images": [
            {
                "registry": i.registry_host,
                "repository": i.repository,
                "tag": i.tag,
                "digest": i.digest,
                "platform": i.platform,
                "source": i.source,
                "evidence": i.evidence,
            }
            for i in images
        ],
    }


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
