"""The Defender client's pure parts: clouds and scopes, challenges, rows into records, bodies."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.defender import arm, graph, importer
from container_mapping.defender import arm as armmod
from container_mapping.errors import ConfigError
from tests.defender.conftest import SUBSCRIPTION
from tests.defender.standin import REGISTRY_KEY, StandIn, finding, registry_id

ACR = registry_id("s1", "rg", "contosoacr")
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("endpoint", "scope", "authority"),
    [
        (None, "https://management.azure.com/.default", "login.microsoftonline.com"),
        (
            "https://management.usgovcloudapi.net/",
            "https://management.core.usgovcloudapi.net/.default",
            "login.microsoftonline.us",
        ),
        (
            "https://management.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
            "login.chinacloudapi.cn",
        ),
        ("https://arm.example.internal:8443/x", "https://arm.example.internal:8443/.default", None),
    ],
)
def test_the_cloud_follows_the_endpoint(endpoint: str | None, scope: str, authority: str) -> None:
    where = arm.cloud(endpoint, {})
    assert (where.scope, where.authority) == (scope, authority)
    assert not where.endpoint.endswith("/")


def test_the_environment_names_the_cloud_and_may_name_the_scope() -> None:
    env = {"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.chinacloudapi.cn"}
    assert arm.cloud(None, env).endpoint == "https://management.chinacloudapi.cn"
    env["CONTAINER_MAPPING_ARM_SCOPE"] = "https://custom/.default"
    assert arm.cloud(None, env).scope == "https://custom/.default"
    assert arm.cloud("https://management.azure.com", env).endpoint == "https://management.azure.com"
    with pytest.raises(ConfigError):
        arm.cloud("http://management.azure.com", {})


def test_a_token_that_is_no_jwt_is_used_for_an_hour() -> None:
    token = arm.StaticTokenCredential("opaque-token").get_token("scope")
    assert token.token == "opaque-token" and token.expires_on > 0


def test_the_challenge_names_the_tenant() -> None:
    header = (
        'Bearer authorization_uri="https://login.windows.net/72f9", error="invalid_token", '
        'error_description="The access token is from the wrong issuer."'
    )
    said = arm._challenge(header)
    assert said["error"] == "invalid_token"
    assert arm._tenant(said["authorization_uri"]) == "72f9"
    assert arm._tenant("") is None


def row(**changes: Any) -> dict[str, Any]:
    raw = finding(
        ACR,
        REGISTRY_KEY,
        "CVE-1",
        "High",
        registry="ContosoACR.azurecr.io",
        repository="shop/api",
        digest=DIGEST,
        tags=["1.0"],
    )
    details = raw["properties"]["additionalData"]["artifactDetails"]
    projected = {
        "id": raw["id"],
        "subscriptionId": raw["subscriptionId"],
        "status": raw["properties"]["status"],
        "artifactDetails": details,
    }
    projected["artifactDetails"].update(changes)
    return projected


def test_a_row_names_its_place_and_image() -> None:
    seen = graph.parse_row(row(), "registry")
    assert seen is not None
    assert (seen.resource_id, seen.place, seen.subscription) == (ACR, "contosoacr", "s1")
    assert (seen.registry, seen.repository, seen.digest, seen.tags) == (
        "contosoacr.azurecr.io",
        "shop/api",
        DIGEST,
        ("1.0",),
    )


@pytest.mark.parametrize(
    "changes",
    [{"digest": "sha256:short"}, {"digest": None}, {"registryHost": ""}, {"repositoryName": None}],
)
def test_rows_without_a_usable_image_are_left_out(changes: dict[str, Any]) -> None:
    assert graph.parse_row(row(**changes), "registry") is None
    assert graph.parse_row({"id": "/x", "artifactDetails": None}, "registry") is None


@given(
    st.dictionaries(
        st.text(max_size=20),
        st.one_of(st.none(), st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3)),
        max_size=6,
    )
)
def test_any_artifact_document_parses_or_is_refused(artifact: dict[str, Any]) -> None:
    seen = graph.parse_row({"id": row()["id"], "artifactDetails": artifact}, "cluster")
    assert seen is None or seen.digest.startswith("sha256:")


def test_rows_fold_into_one_record_per_image_and_place(arm: StandIn) -> None:
    from azure.mgmt.resourcegraph import ResourceGraphClient

    def raw(severity: str, code: str = "Unhealthy", **artifact: Any) -> dict[str, Any]:
        made = finding(
            ACR,
            REGISTRY_KEY,
            "CVE-1",
            severity,
            registry="contosoacr.azurecr.io",
            repository="shop/api",
            digest=DIGEST,
            tags=["1.0"],
            code=code,
        )
        made["subscriptionId"] = SUBSCRIPTION
        made["properties"]["additionalData"]["artifactDetails"].update(artifact)
        return made

    arm.arm.findings = [
        raw("High"),
        raw("High"),
        raw("Critical"),
        raw("Low", code="Healthy"),
        raw("High", tags=["latest"], lastPushedToRegistryUTC="2026-12-01T00:00:00Z"),
    ]
    where = armmod.cloud(None, os.environ)
    with ResourceGraphClient(
        armmod.credential(where, os.environ), **armmod.client_options(where)
    ) as client:
        images, count, skipped, pages = graph._fold(
            client, [SUBSCRIPTION], REGISTRY_KEY, "registry"
        )
    [image] = images
    assert (count, skipped, pages) == (5, 0, 2)  # the stand-in pages 4 rows at a time
    assert len(arm.arm.calls("POST", "ResourceGraph")) == 2
    assert image.findings.to_dict() == {
        "critical": 1,
        "high": 3,
        "medium": 0,
        "low": 0,
        "other": 0,
        "total": 4,
    }
    assert image.tags == ("1.0", "latest") and image.last_pushed == "2026-12-01T00:00:00Z"


def test_bodies_stay_under_the_limit_and_only_the_last_completes() -> None:
    seen = graph.parse_row(row(), "registry")
    assert seen is not None
    many = tuple(
        seen.__class__(**{**seen.__dict__, "digest": f"sha256:{i:064x}"}) for i in range(20)
    )
    snapshot = graph.Snapshot(many, many[:3], 23, 0, 2)
    bodies = list(importer.bodies(snapshot, ["s1"], "6d1f2c3b-0a4e-4b5c-8d7e-1f2a3b4c5d6e", 2000))
    assert len(bodies) > 3
    assert [b["complete"] for b in bodies] == [False] * (len(bodies) - 1) + [True]
    assert all(len(json.dumps(b["images"] + b["running"])) < 2000 for b in bodies)
    assert sum(len(b["images"]) for b in bodies) == 20
    assert sum(len(b["running"]) for b in bodies) == 3
