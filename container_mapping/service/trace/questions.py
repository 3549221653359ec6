"""One question from query parameters to an answer, shared by `/v1/trace` and the page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from container_mapping.reference import DIGEST_RE
from container_mapping.service.errors import ServiceError, invalid
from container_mapping.service.trace import service
from container_mapping.service.trace.models import Query, TraceAnswer

KINDS = ("digest", "reference", "repository", "commit", "pipeline")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,40}")
MAX_VALUE = 2048


@dataclass(frozen=True)
class Question:
    kind: str
    value: str | None = None
    cluster: str | None = None


def question(params: dict[str, str | None], unmapped: bool, cluster: str | None) -> Question:
    """The one question the parameters ask; 422 naming the parameter when they ask none or two."""
    given = [k for k in KINDS if params.get(k)]
    if unmapped:
        if given:
            raise invalid("`unmapped` is asked alone (with `cluster` at most)", field=given[0])
        return Question("unmapped", None, cluster or None)
    if len(given) != 1:
        raise invalid(f"ask exactly one of {', '.join(KINDS)} or unmapped=true", field="query")
    kind = given[0]
    value = str(params[kind]).strip()
    if len(value) > MAX_VALUE:
        raise invalid(f"`{kind}` is longer than {MAX_VALUE} characters", field=kind)
    _check(kind, value)
    return Question(kind, value)


def _check(kind: str, value: str) -> None:
    if kind == "digest" and not DIGEST_RE.fullmatch(value):
        raise invalid("a digest is 'sha256:' and 64 lower-case hex digits", field="digest")
    if kind == "commit" and not _COMMIT_RE.fullmatch(value):
        raise invalid("a commit is 7 to 40 hex digits", field="commit")
    if kind == "pipeline" and len(value.split("/")) != 3:
        raise invalid("a pipeline is ORGANIZATION/PROJECT/PIPELINE-ID", field="pipeline")


def answer(session: Session, org_id: str, asked: Question) -> TraceAnswer:
    query = Query(kind=asked.kind, value=asked.value, cluster=asked.cluster)  # type: ignore[arg-type]
    if asked.kind == "unmapped":
        running = service.unmapped(session, org_id, asked.cluster)
        return TraceAnswer(query=query, images=[], unmapped=running)
    found = service.trace_digests(session, org_id, _digests(session, org_id, asked))
    if not found.images:
        raise ServiceError(404, f"nothing is known of this {asked.kind}", field=asked.kind)
    return TraceAnswer(query=query, images=found.images, unmapped=[], truncated=found.truncated)


def _digests(session: Session, org_id: str, asked: Question) -> list[str]:
    value = asked.value or ""
    if asked.kind == "digest":
        return [value]
    if asked.kind == "reference":
        return service.digests_for_reference(session, org_id, value)
    if asked.kind == "commit":
        return service.digests_for_commit(session, org_id, value)
    if asked.kind == "repository":
        return service.digests_for_repository(session, org_id, value)
    organization, project, pipeline = value.split("/")
    return service.digests_for_pipeline(session, org_id, organization, project, pipeline)
