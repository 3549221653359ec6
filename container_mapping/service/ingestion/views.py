"""Ingestion's routes: our versioned report and Defender's wire format, from pipeline jobs only.

Organization, project, pipeline, run, repository and commit are the token's; the body only
adds what the token cannot know (run number, job) and lists the images. A body that names
another organization, project, pipeline or run than its token is refused with 403.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from container_mapping.errors import Error
from container_mapping.model import (
    CollectionWindow,
    ImageRecord,
    parse_time,
)
from container_mapping.reference import ImageReference
from container_mapping.service.bodies import json_body, request_body
from container_mapping.service.database import get_session
from container_mapping.service.errors import ServiceError, forbidden, invalid
from container_mapping.service.ingestion import defender, service
from container_mapping.service.ingestion.models import (
    DefenderIn,
    ErrorBody,
    ImageIn,
    PipelineIn,
    ReportAccepted,
    ReportIn,
)
from container_mapping.service.ingestion.writer import GroupWriter
from container_mapping.service.trust.dependencies import PipelineCallerDep, ReaderDep
from container_mapping.service.trust.models import PipelineCaller

router = APIRouter()
SessionDep = Annotated[Session, Depends(get_session)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 413, 422, 503)
}
IDEMPOTENCY_KEY = "Idempotency-Key"
_IDEMPOTENCY = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": "The same key again returns the first answer and stores nothing twice",
    "schema": {"type": "string", "minLength": 1, "maxLength": service.MAX_KEY_LENGTH},
}


def _ingestion(model: type[ReportIn] | type[DefenderIn]) -> dict[str, Any]:
    """An ingestion route's `openapi_extra`: its JSON body (read by `bodies.json_body`, not by
    FastAPI) and the Idempotency-Key header (read from the request)."""
    return {**request_body(model), "parameters": [_IDEMPOTENCY]}


Store = Callable[[service.Submission], Awaitable[service.Stored]]


def storer(request: Request) -> Store:
    """How this process stores a report: the group writer (`ingestion.writer`), else (an
    in-memory SQLite database, one connection) a transaction of its own in a thread.

    Ingestion routes run on the event loop and never hold a thread while they wait: the
    writer answers through an asyncio future.
    """
    writer: GroupWriter | None = getattr(request.app.state, "writer", None)
    if writer is not None:
        return writer.store
    sessions: sessionmaker[Session] = request.app.state.sessions

    async def in_thread(submission: service.Submission) -> service.Stored:
        return await run_in_threadpool(_store_in_session, sessions, submission)

    return in_thread


def _store_in_session(
    sessions: sessionmaker[Session], submission: service.Submission
) -> service.Stored:
    with sessions() as session:
        return service.store(session, submission)


@router.post(
    "/v1/reports",
    status_code=201,
    response_model=ReportAccepted,
    responses=ERRORS,
    summary="Store what one job pushed (protocol: mapping-service)",
    openapi_extra=_ingestion(ReportIn),
)
async def post_report(caller: PipelineCallerDep, request: Request) -> JSONResponse:
    report = await json_body(request, ReportIn)
    _check_context(report.pipeline, caller)
    images = _pushed_images(report)
    pipeline = report.pipeline
    job = service.JobDetails(
        run_number=pipeline.runNumber,
        repository_name=pipeline.repositoryName,
        job_id=pipeline.jobId,
        job_name=pipeline.jobName,
        job_attempt=pipeline.jobAttempt,
        plan_id=pipeline.planId,
        engine_version=report.engine.version,
        tool_version=report.tool.version,
    )
    return await _store(request, caller, "mapping-service", images, job)


@router.post(
    "/azuredevops/v1/container-mappings",
    status_code=201,
    response_model=ReportAccepted,
    responses=ERRORS,
    summary="Store what one job pushed, in Defender for Cloud's wire format (protocol: defender)",
    openapi_extra=_ingestion(DefenderIn),
)
async def post_defender(caller: PipelineCallerDep, request: Request) -> JSONResponse:
    payload = await json_body(request, DefenderIn)
    images = defender.pushed_records(payload.dockerEvents, payload.dockerImages)
    job = service.JobDetails(engine_version=payload.dockerVersion or None)
    return await _store(request, caller, "defender", images, job)


async def _store(
    request: Request,
    caller: PipelineCaller,
    protocol: str,
    images: tuple[ImageRecord, ...],
    job: service.JobDetails,
) -> JSONResponse:
    """Store and answer; the answer is built here (already valid), not re-validated."""
    body = await request.body()  # already read for the model: cached
    header = request.headers.get(IDEMPOTENCY_KEY)
    submission = service.Submission(
        caller=caller,
        protocol=protocol,
        key=service.idempotency_key(header, caller, body),
        body_sha256=hashlib.sha256(body).hexdigest(),
        images=images,
        job=job,
    )
    stored = await storer(request)(submission)
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
    return JSONResponse(stored.answer, status_code=201, headers=headers)


_CHECKED = (
    ("organizationId", "org_id", "organization"),
    ("projectId", "project_id", "project"),
    ("definitionId", "pipeline_id", "pipeline"),
    ("runId", "run_id", "run"),
)


def _check_context(pipeline: PipelineIn, caller: PipelineCaller) -> None:
    """403 when the body speaks for another organization, project, pipeline or run."""
    for body_name, claim_name, what in _CHECKED:
        said = getattr(pipeline, body_name)
        if said is not None and said.strip().lower() != getattr(caller, claim_name).lower():
            raise forbidden(
                f"the report names another {what} than its token; a job reports only its own "
                "images",
                f"pipeline.{body_name}",
            )


def _pushed_images(report: ReportIn) -> tuple[ImageRecord, ...]:
    """The pushed images as domain records; a value the domain refuses is a 422 naming it.

    Built straight from the validated body (no dump and re-parse): the domain checks what the
    schema cannot (a registry name, the length of a whole name, a window that ends before it
    starts).
    """
    try:
        CollectionWindow(parse_time(report.window.since), parse_time(report.window.until))
    except Error as err:
        raise invalid(str(err), "window") from err
    records = []
    for i, image in enumerate(report.images):
        if not image.pushed:
            continue
        try:
            records.append(_record(image))
        except (Error, ValueError) as err:
            raise invalid(str(err), f"images[{i}]") from err
    return tuple(records)


def _record(image: ImageIn) -> ImageRecord:
    """What is stored of one pushed image (labels and notes are the job's log, not ours)."""
    return ImageRecord(
        reference=ImageReference(image.registry, image.repository, image.tag, image.digest),
        image_id=image.imageId,
        pushed=True,
        source=image.source,
        pushed_at=parse_time(image.pushedAt) if image.pushedAt else None,
        created=parse_time(image.created) if image.created else None,
        platform=image.platform,
        attribution=image.attribution.status,
        verification=image.verification.status,
        registry_digest=image.verification.registryDigest,
    )


@router.get(
    "/v1/reports/{report_id}",
    response_model=dict[str, Any],
    responses={code: {"model": ErrorBody} for code in (401, 403, 404)},
    summary="One stored report and its images (your organization's only)",
)
def get_report(report_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    found = service.report(session, caller.org_id, report_id)
    if found is None:
        raise ServiceError(404, "no such report")
    return found
