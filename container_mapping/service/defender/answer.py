"""The `defender` part of a trace answer: where Defender sees an image and what it found.

Kept apart from the tables so the trace models can import it without SQLAlchemy.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True)


class Findings(BaseModel):
    """Open vulnerability findings by severity (`Unhealthy` sub-assessments)."""

    model_config = _FROZEN
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    other: int = 0
    total: int = 0


class DefenderPlace(BaseModel):
    model_config = _FROZEN
    kind: Literal["registry", "cluster"]
    name: str = Field(description="the registry's or the cluster's resource name")
    resourceId: str  # noqa: N815
    subscription: str
    registry: str
    repository: str
    digest: str
    tags: list[str]
    lastPushed: Optional[str] = None  # noqa: N815
    findings: Findings
    changedAt: str = Field(description="when an import last found this record changed")  # noqa: N815


class DefenderPart(BaseModel):
    """What Defender for Cloud reports of the image (and its index or platform manifests)."""

    model_config = _FROZEN
    findings: Findings = Field(description="the most any one place reports, per severity")
    registries: list[DefenderPlace]
    clusters: list[DefenderPlace]
