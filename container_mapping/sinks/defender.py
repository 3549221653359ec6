"""Defender for Cloud's ingestion endpoint, authenticated with the job's OIDC token.

The POST is retried on no answer, 408, 429 and 5xx: what it carries is a set of facts (this
reference was pushed with this digest by this job), so a repeated delivery changes nothing.
"""

from __future__ import annotations

from container_mapping.defender import ingest
from container_mapping.model import MappingReport
from container_mapping.sinks.interface import BearerSink, Delivery, post_json


class DefenderSink(BearerSink):
    name = "defender"

    def send(self, report: MappingReport, deadline: float | None) -> Delivery:
        payload = ingest.body(report)
        headers = self.bearer(deadline)
        return post_json(
            self.http,
            self.endpoint,
            payload,
            headers,
            deadline=deadline,
            retry=self.http.retry,
        )
