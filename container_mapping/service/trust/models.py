"""Who is calling, once verified: a pipeline job (writes) or an API key (reads, links)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineCaller:
    """A job of an Azure Pipelines run, as its verified OIDC token says.

    Everything here comes from the token's claims (`sub`, `org_id`, `prj_id`, `def_id`,
    `run_id`, `rpo_uri`, `rpo_ver`, `rpo_ref`, `jti`), never from a request body. The project
    and pipeline names come from the subject `p://{organization}/{project}/{pipeline}`.
    """

    org_id: str
    project_id: str
    pipeline_id: str
    run_id: str
    repository_uri: str | None
    commit: str | None
    ref: str | None
    subject: str
    organization_name: str | None = None
    project_name: str | None = None
    pipeline_name: str | None = None
    token_id: str | None = None  # jti


@dataclass(frozen=True)
class ApiCaller:
    """A holder of one configured API key of one organization."""

    org_id: str
    key_name: str
    scopes: frozenset[str]
