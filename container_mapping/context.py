"""Build `PipelineContext` from the variables the Azure Pipelines agent exports.

The agent turns `System.TeamProjectId` into `SYSTEM_TEAMPROJECTID` (dots and spaces become
underscores, upper case). Empty values count as unset.
"""

from __future__ import annotations

from collections.abc import Mapping

from container_mapping.model import PipelineContext

#: PipelineContext field -> agent environment variable.
VARIABLES: dict[str, str] = {
    "organization_url": "SYSTEM_COLLECTIONURI",
    "organization_id": "SYSTEM_COLLECTIONID",
    "project": "SYSTEM_TEAMPROJECT",
    "project_id": "SYSTEM_TEAMPROJECTID",
    "definition_id": "SYSTEM_DEFINITIONID",
    "definition_name": "BUILD_DEFINITIONNAME",
    "run_id": "BUILD_BUILDID",
    "run_number": "BUILD_BUILDNUMBER",
    "repository_name": "BUILD_REPOSITORY_NAME",
    "repository_uri": "BUILD_REPOSITORY_URI",
    "repository_id": "BUILD_REPOSITORY_ID",
    "repository_provider": "BUILD_REPOSITORY_PROVIDER",
    "commit": "BUILD_SOURCEVERSION",
    "branch": "BUILD_SOURCEBRANCH",
    "job_id": "SYSTEM_JOBID",
    "job_name": "SYSTEM_JOBNAME",
    "job_attempt": "SYSTEM_JOBATTEMPT",
    "plan_id": "SYSTEM_PLANID",
    "host_type": "SYSTEM_HOSTTYPE",
    "agent_os": "AGENT_OS",
}


def from_environment(environ: Mapping[str, str]) -> PipelineContext:
    """Read the pipeline context; a variable that is missing or blank stays `None`."""
    values = {}
    for field_name, variable in VARIABLES.items():
        value = environ.get(variable, "").strip()
        if value:
            values[field_name] = value
    if "organization_url" in values and not values["organization_url"].endswith("/"):
        values["organization_url"] += "/"
    return PipelineContext(**values)
