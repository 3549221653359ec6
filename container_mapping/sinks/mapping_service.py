"""Our mapping service: the versioned report, authenticated with the job's OIDC token.

The `Idempotency-Key` is derived from plan, job and attempt, so the service stores a retried
send once; a POST is retried only when it has one (outside a pipeline it has none).
"""

from __future__ import annotations

import hashlib

from container_mapping.http import NO_RETRY
from container_mapping.model import MappingReport, PipelineContext
from container_mapping.sinks.interface import BearerSink, Delivery, post_json


def idempotency_key(context: PipelineContext) -> str | None:
    """A stable key for one attempt of one job: same job, same attempt, same key."""
    if not (context.plan_id and context.job_id):
        return None
    seed = (
        f"container-mapping/v1\n{context.plan_id}\n{context.job_id}\n{context.job_attempt or '1'}"
    )
    return hashlib.sha256(seed.encode()).hexdigest()[:40]


class MappingServiceSink(BearerSink):
    name = "mapping-service"

    def send(self, report: MappingReport, deadline: float | None) -> Delivery:
        headers = self.bearer(deadline)
        key = idempotency_key(report.pipeline)
        if key:
            headers["Idempotency-Key"] = key
        return post_json(
            self.http,
            self.endpoint,
            report.to_dict(),
            headers,
            deadline=deadline,
            retry=self.http.retry if key else NO_RETRY,
        )
