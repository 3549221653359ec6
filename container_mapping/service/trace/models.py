"""The answer to every question `/v1/trace` takes: one shape, documented as a JSON Schema.

`docs/trace-answer.schema.json` is generated from these models (`python3 -m
container_mapping.service.trace.schema`) and the tests validate real answers against it, so
the document, the OpenAPI description and the answers cannot drift apart.

An image's chain: `producedBy` (the runs that pushed it, or whose labels claim it), `storedIn`
(where a registry holds it), `runsIn` (the containers of the last snapshot of each cluster).
`related` lists the index it belongs to or the platform manifests it holds: a run that pushed an
index produced each of its platform images, and the other way round.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from container_mapping.service.defender.answer import DefenderPart

DIGEST = r"^sha256:[a-f0-9]{64}$"
QueryKind = Literal["digest", "reference", "repository", "commit", "pipeline", "unmapped"]
_FROZEN = ConfigDict(frozen=True)


class Named(BaseModel):
    model_config = _FROZEN
    id: Optional[str] = None
    name: Optional[str] = None


class Run(BaseModel):
    model_config = _FROZEN
    id: str
    number: Optional[str] = None


class SourceRepository(BaseModel):
    model_config = _FROZEN
    uri: Optional[str] = None
    name: Optional[str] = None


class ProducedBy(BaseModel):
    """One run that pushed the image (evidence `report`), or that its labels name (`label`)."""

    model_config = _FROZEN
    evidence: Literal["report", "label"]
    digest: str = Field(
        pattern=DIGEST, description="the digest the run pushed: this image's, or its index's"
    )
    organization: Named
    project: Named
    pipeline: Named
    run: Optional[Run] = None
    repository: SourceRepository
    commit: Optional[str] = None
    branch: Optional[str] = None
    job: Named
    when: Optional[str] = Field(default=None, description="RFC 3339: pushed, else received")


class StoredIn(BaseModel):
    model_config = _FROZEN
    source: Literal["registry", "report"] = Field(
        description="`registry`: found by a crawl; `report`: where the run said it pushed"
    )
    registry: str
    repository: str
    tags: list[str]
    digest: str = Field(pattern=DIGEST)
    mediaType: Optional[str] = None  # noqa: N815
    platform: Optional[str] = None
    parentDigest: Optional[str] = None  # noqa: N815
    seenAt: Optional[str] = None  # noqa: N815


class Workload(BaseModel):
    model_config = _FROZEN
    kind: str
    name: str
    inferred: bool = Field(description="named from the ReplicaSet's pod-template-hash suffix")


class RunsIn(BaseModel):
    model_config = _FROZEN
    cluster: str
    namespace: str
    workload: Workload
    pod: str
    container: str
    containerKind: Literal["regular", "init", "ephemeral"]  # noqa: N815
    image: str
    imageId: Optional[str] = None  # noqa: N815
    digest: Optional[str] = None
    resolvable: bool
    lastSeen: str  # noqa: N815


class Related(BaseModel):
    model_config = _FROZEN
    digest: str = Field(pattern=DIGEST)
    relation: Literal["index", "platform"]
    platform: Optional[str] = None


class ImageTrace(BaseModel):
    model_config = _FROZEN
    digest: str = Field(pattern=DIGEST)
    related: list[Related]
    producedBy: list[ProducedBy]  # noqa: N815
    storedIn: list[StoredIn]  # noqa: N815
    runsIn: list[RunsIn]  # noqa: N815
    defender: Optional[DefenderPart] = None


class Query(BaseModel):
    model_config = _FROZEN
    kind: QueryKind
    value: Optional[str] = None
    cluster: Optional[str] = None


class TraceAnswer(BaseModel):
    """What the service knows; `unmapped` is filled only for `?unmapped=true`."""

    model_config = ConfigDict(frozen=True, title="Container mapping trace answer")
    query: Query
    images: list[ImageTrace]
    unmapped: list[RunsIn]
    truncated: bool = Field(default=False, description="more images matched than were returned")
