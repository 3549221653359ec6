"""`defender connect` and `defender inventory` against the ARM stand-in, through the SDK.

The connector PUT carries what Defender's portal sends; the DevOps configuration is a
long-running operation the client follows to `Succeeded` (every poll and the final GET are
counted); the inventory is read to its last `nextLink` page at every level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from container_mapping.defender import arm as armmod
from container_mapping.defender.connector import Selection, Target, connect
from container_mapping.defender.inventory import inventory
from container_mapping.errors import ConfigError
from tests.defender.conftest import SUBSCRIPTION, cli_environment
from tests.defender.standin import StandIn

TARGET = Target(SUBSCRIPTION, "rg-security", "contoso-ado", "westeurope")
FLAGS = ["--subscription", SUBSCRIPTION, "--resource-group", "rg-security", "--name", "contoso-ado"]


def security(standin: StandIn) -> Any:
    from azure.mgmt.security import SecurityCenter

    where = armmod.cloud(None, os.environ)
    credential = armmod.credential(where, os.environ)
    return SecurityCenter(credential, SUBSCRIPTION, **armmod.client_options(where))


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "container_mapping", "defender", *args],
        capture_output=True,
        text=True,
        env=cli_environment(env),
        timeout=120,
        check=False,
    )


def test_connect_all_future_creates_the_connector_and_follows_the_operation(arm: StandIn) -> None:
    with security(arm) as client:
        done = connect(client, TARGET, Selection())
    connector = arm.arm.connectors[(SUBSCRIPTION, "rg-security", "contoso-ado")]
    props = connector["properties"]
    assert connector["location"] == "westeurope"
    assert props["environmentName"] == "AzureDevOps"
    assert props["environmentData"] == {"environmentType": "AzureDevOpsScope"}
    assert props["offerings"] == [{"offeringType": "CspmMonitorAzureDevOps"}]
    assert uuid.UUID(props["hierarchyIdentifier"])
    config = arm.arm.configurations[(SUBSCRIPTION, "rg-security", "contoso-ado")]["properties"]
    assert config["autoDiscovery"] == "Enabled" and "topLevelInventoryList" not in config
    # two `InProgress` polls, the `Succeeded` one, then the resource itself
    assert len(arm.arm.calls("GET", r"/operationResults/")) == arm.arm.lro_polls + 1
    assert arm.arm.calls("GET", r"/devops/default\?")
    assert done.created and done.provisioning_state == "Succeeded"
    assert done.auto_discovery == "Enabled" and done.organizations == ()


def test_connect_again_selects_organizations_and_keeps_the_identity(arm: StandIn) -> None:
    with security(arm) as client:
        first = connect(client, TARGET, Selection())
        second = connect(client, TARGET, Selection(("contoso", "fabrikam")))
    assert not second.created
    assert second.hierarchy_identifier == first.hierarchy_identifier
    config = arm.arm.configurations[(SUBSCRIPTION, "rg-security", "contoso-ado")]["properties"]
    assert config["autoDiscovery"] == "Disabled"
    assert config["topLevelInventoryList"] == ["contoso", "fabrikam"]
    assert second.organizations == ("contoso", "fabrikam")


def test_the_operation_without_retry_after_is_still_followed(arm: StandIn) -> None:
    arm.arm.lro_retry_after = None
    arm.arm.lro_polls = 0
    with security(arm) as client:
        done = connect(client, TARGET, Selection(("contoso",)))
    assert done.provisioning_state == "Succeeded"
    assert len(arm.arm.calls("GET", r"/operationResults/")) == 1


@pytest.mark.parametrize(
    ("all_future", "organizations"), [(True, "a,b"), (False, None), (False, " , ")]
)
def test_selection_is_one_of_the_two(all_future: bool, organizations: str | None) -> None:
    with pytest.raises(ConfigError, match="--all-future or --organizations"):
        Selection.parse(all_future, organizations)


def test_selection_drops_repeats_and_blanks() -> None:
    assert Selection.parse(False, "contoso, fabrikam,,contoso").organizations == (
        "contoso",
        "fabrikam",
    )


def seed_inventory(standin: StandIn) -> None:
    standin.arm.organizations = {
        "contoso": {"web": ["web-app", "web-api", "web-docs"], "data": ["etl"], "ops": []},
        "fabrikam": {"shop": ["shop-front"]},
        "northwind": {},
    }
    standin.arm.onboarding = {"northwind": "OnboardedByOtherConnector"}


def test_inventory_reads_every_page_of_every_level(arm: StandIn) -> None:
    seed_inventory(arm)
    with security(arm) as client:
        connect(client, TARGET, Selection())
        items = inventory(client, TARGET)
    orgs = [i.organization for i in items if i.kind == "organization"]
    assert orgs == ["contoso", "fabrikam", "northwind"]  # 2 pages of 2
    projects = [(i.organization, i.project) for i in items if i.kind == "project"]
    assert projects == [
        ("contoso", "web"),
        ("contoso", "data"),
        ("contoso", "ops"),
        ("fabrikam", "shop"),
    ]
    repos = [i.repository for i in items if i.kind == "repository"]
    assert repos == ["web-app", "web-api", "web-docs", "etl", "shop-front"]
    assert next(i for i in items if i.repository == "etl").url == (
        "https://dev.azure.com/contoso/data/_git/etl"
    )
    states = {i.organization: i.onboarding_state for i in items if i.kind == "organization"}
    assert states["northwind"] == "OnboardedByOtherConnector"
    assert arm.arm.calls("GET", r"azureDevOpsOrgs\?.*skipToken=2")
    assert arm.arm.calls("GET", r"web/repos\?.*skipToken=2")


def test_the_commands_as_a_user_runs_them(arm: StandIn) -> None:
    seed_inventory(arm)
    env = {
        k: os.environ[k]
        for k in (
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
            "REQUESTS_CA_BUNDLE",
            "CONTAINER_MAPPING_ARM_TOKEN",
        )
    }
    code = "ado-consent-code-5f1c"
    consent = {**env, "CONTAINER_MAPPING_DEVOPS_AUTHORIZATION_CODE": code}
    done = cli("connect", *FLAGS, "--location", "westeurope", "--organizations", "contoso",
               env=consent)  # fmt: skip
    assert arm.arm.authorization_codes == [code] and code not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "created connector contoso-ado (Succeeded): contoso"
    done = cli("inventory", *FLAGS, "--json", env=env)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [i["repository"] for i in listed if i["kind"] == "repository"][-1] == "shop-front"
    done = cli("inventory", *FLAGS, env=env)
    assert done.returncode == 0, done.stderr
    assert "OnboardedByOtherConnector" in done.stdout and "web-docs" in done.stdout
    done = cli("connect", *FLAGS, "--location", "westeurope", env=env)
    assert done.returncode == 2 and "--all-future or --organizations" in done.stderr
