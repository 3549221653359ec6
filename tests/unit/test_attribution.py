"""Labels decide attribution only when they can: another run's labels exclude an image."""

from __future__ import annotations

import pytest

from container_mapping.attribution import attribute
from container_mapping.context import from_environment
from container_mapping.model import Attribution

from .test_context import AGENT_ENV

CONTEXT = from_environment(AGENT_ENV)
COMMIT = AGENT_ENV["BUILD_SOURCEVERSION"]
OTHER_COMMIT = "f" * 40
REPO = "https://dev.azure.com/contoso/Payments/_git/payments"


@pytest.mark.parametrize(
    ("labels", "verdict"),
    [
        ({}, Attribution.UNKNOWN),
        ({"maintainer": "x"}, Attribution.UNKNOWN),
        ({"com.azure.dev.image.build.builduri": "vstfs:///Build/Build/1234"}, Attribution.MATCH),
        ({"com.azure.dev.image.build.builduri": "vstfs:///Build/Build/999"}, Attribution.OTHER_RUN),
        (
            {
                "com.azure.dev.image.build.builduri": "vstfs:///Build/Build/1234",
                "com.azure.dev.image.system.teamfoundationcollectionuri": "https://dev.azure.com/fabrikam/",
            },
            Attribution.OTHER_RUN,
        ),
        (
            {
                "com.azure.dev.image.build.builduri": "vstfs:///Build/Build/1234",
                "com.azure.dev.image.system.teamfoundationcollectionuri": "https://dev.azure.com/contoso/",
            },
            Attribution.MATCH,
        ),
        # A commit alone names no run: the repository must agree too.
        ({"org.opencontainers.image.revision": COMMIT.upper()}, Attribution.UNKNOWN),
        (
            {
                "org.opencontainers.image.revision": COMMIT.upper(),
                "org.opencontainers.image.source": REPO + ".git",
            },
            Attribution.MATCH,
        ),
        (
            {
                "org.opencontainers.image.revision": COMMIT,
                "org.opencontainers.image.source": "https://github.com/x/y",
            },
            Attribution.UNKNOWN,
        ),
        (
            {
                "org.opencontainers.image.revision": OTHER_COMMIT,
                "org.opencontainers.image.source": REPO + ".git",
            },
            Attribution.OTHER_RUN,
        ),
        (
            {
                "org.opencontainers.image.revision": OTHER_COMMIT,
                "org.opencontainers.image.source": "https://github.com/x/y",
            },
            Attribution.UNKNOWN,
        ),
        ({"com.azure.dev.image.build.sourceversion": COMMIT}, Attribution.UNKNOWN),
        (
            {
                "com.azure.dev.image.build.sourceversion": COMMIT,
                "com.azure.dev.image.build.repository.uri": REPO,
            },
            Attribution.MATCH,
        ),
    ],
)
def test_verdicts(labels: dict[str, str], verdict: Attribution) -> None:
    assert attribute(labels, CONTEXT)[0] is verdict


def test_evidence_keeps_only_pipeline_labels() -> None:
    labels = {"org.opencontainers.image.revision": COMMIT, "maintainer": "me"}
    assert attribute(labels, CONTEXT)[1] == {"org.opencontainers.image.revision": COMMIT}


def test_outside_a_pipeline_nothing_is_judged() -> None:
    labels = {"com.azure.dev.image.build.builduri": "vstfs:///Build/Build/999"}
    assert attribute(labels, from_environment({}))[0] is Attribution.UNKNOWN
