"""The pipeline context comes from the agent's environment variables, blanks ignored."""

from __future__ import annotations

from container_mapping.context import VARIABLES, from_environment

AGENT_ENV = {
    "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso",
    "SYSTEM_COLLECTIONID": "c0ffee00-0000-4000-8000-000000000001",
    "SYSTEM_TEAMPROJECT": "Payments",
    "SYSTEM_TEAMPROJECTID": "c0ffee00-0000-4000-8000-000000000002",
    "SYSTEM_DEFINITIONID": "42",
    "BUILD_DEFINITIONNAME": "payments-ci",
    "BUILD_BUILDID": "1234",
    "BUILD_BUILDNUMBER": "20261127.3",
    "BUILD_REPOSITORY_NAME": "payments",
    "BUILD_REPOSITORY_URI": "https://contoso@dev.azure.com/contoso/Payments/_git/payments",
    "BUILD_REPOSITORY_ID": "c0ffee00-0000-4000-8000-000000000003",
    "BUILD_REPOSITORY_PROVIDER": "TfsGit",
    "BUILD_SOURCEVERSION": "0123456789abcdef0123456789abcdef01234567",
    "BUILD_SOURCEBRANCH": "refs/heads/main",
    "SYSTEM_JOBID": "c0ffee00-0000-4000-8000-000000000004",
    "SYSTEM_JOBNAME": "Build",
    "SYSTEM_JOBATTEMPT": "1",
    "SYSTEM_PLANID": "c0ffee00-0000-4000-8000-000000000005",
    "SYSTEM_HOSTTYPE": "build",
    "AGENT_OS": "Linux",
}


def test_every_field_comes_from_its_variable() -> None:
    context = from_environment(AGENT_ENV)
    assert context.organization_url == "https://dev.azure.com/contoso/"
    assert context.project_id == AGENT_ENV["SYSTEM_TEAMPROJECTID"]
    assert context.run_id == "1234"
    assert context.commit == AGENT_ENV["BUILD_SOURCEVERSION"]
    assert context.host_type == "build"
    assert context.in_pipeline
    data = context.to_dict()
    assert len(data) == len(VARIABLES) == len(AGENT_ENV)
    assert data["jobName"] == "Build" and data["repositoryProvider"] == "TfsGit"


def test_outside_a_pipeline_everything_is_none() -> None:
    context = from_environment({"PATH": "/bin", "BUILD_BUILDID": "  "})
    assert context.to_dict() == {}
    assert not context.in_pipeline


def test_round_trip_through_dict() -> None:
    context = from_environment(AGENT_ENV)
    assert type(context).from_dict(context.to_dict()) == context
