"""The sink extension point: send one report somewhere, within a deadline, or say why not.

A sink is given a `TokenSource` rather than a token: it asks for the job's OIDC token only
when it is about to send, so a job that pushed nothing never talks to Azure DevOps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

from container_mapping.errors import ApiError
from container_mapping.http import HttpClient, RetryPolicy, TransportError, redact
from container_mapping.model import MappingReport

#: Returns the job's OIDC token; raises `TokenError` with the cause and the fix.
TokenSource = Callable[[Optional[float]], str]


class SinkProtocol(str, enum.Enum):
    """The `protocol` input of the task (its values are `sinks.PROTOCOLS`)."""

    DEFENDER = "defender"
    MAPPING_SERVICE = "mapping-service"


class SinkError(ApiError):
    """The endpoint did not take the report; the message names the endpoint and the cause."""


@dataclass(frozen=True)
class Delivery:
    """Where the report was taken."""

    endpoint: str  # redacted, fit for the summary line


class Sink(Protocol):
    name: str

    def send(self, report: MappingReport, deadline: float | None) -> Delivery:
        """Deliver the report or raise `SinkError` (or `TokenError`) before `deadline`."""
        ...


class BearerSink:
    """What both sinks share: an endpoint, an HTTP client, and the job's token on demand."""

    def __init__(self, endpoint: str, http: HttpClient, token: TokenSource) -> None:
        self.endpoint = endpoint
        self.http = http
        self.token = token

    def bearer(self, deadline: float | None) -> dict[str, str]:
        """The token's header; the endpoint's connection opens while the token is awaited."""
        self.http.connect(self.endpoint, deadline)
        return {"Authorization": f"Bearer {self.token(deadline)}"}


def post_json(
    http: HttpClient,
    url: str,
    payload: Any,
    headers: dict[str, str],
    *,
    deadline: float | None,
    retry: RetryPolicy,
) -> Delivery:
    """POST `payload`; a non-2xx answer or no answer becomes a `SinkError`."""
    where = redact(url)
    try:
        response = http.request(
            "POST", url, headers=headers, json=payload, deadline=deadline, retry=retry
        )
    except TransportError as err:
        raise SinkError(f"the report was not delivered: {err}") from err
    if response.ok:
        return Delivery(where)
    raise SinkError(f"{where} did not take the report: {_why(response.status)}", response.status)


def _why(status: int) -> str:
    if status in (401, 403):
        return (
            f"HTTP {status}, the job's token was refused (is this organization connected to "
            "the endpoint's tenant?)"
        )
    if status == 429:
        return "HTTP 429, still too many requests when the time budget ran out"
    if 300 <= status < 400:
        return f"HTTP {status}, a redirect (check the endpoint input; redirects are not followed)"
    if status >= 500 or status == 408:
        return f"HTTP {status} after retrying within the time budget"
    return f"HTTP {status}"
