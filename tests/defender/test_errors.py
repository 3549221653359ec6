"""Errors as users meet them: each is one line on stderr that names the cause and the fix,
with exit code 1 (2 for a usage error), no traceback, and never the token.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.defender.conftest import FORBIDDEN, SUBSCRIPTION, cli_environment
from tests.defender.standin import TENANT, StandIn, bearer_token
from tests.service.server import free_port

CONNECTOR = ["--resource-group", "rg-security", "--name", "contoso-ado"]


def cli(standin: StandIn, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    given = {k: os.environ[k] for k in ("AZURE_RESOURCE_MANAGER_ENDPOINT", "REQUESTS_CA_BUNDLE",
                                        "CONTAINER_MAPPING_ARM_TOKEN")}  # fmt: skip
    given.update(env)
    return subprocess.run(
        [sys.executable, "-m", "container_mapping", "defender", *args],
        capture_output=True, text=True, env=cli_environment(given), timeout=120, check=False,
    )  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def connect(standin: StandIn) -> None:
    standin.arm.connectors[(SUBSCRIPTION, "rg-security", "contoso-ado")] = {
        "id": "/x", "name": "contoso-ado", "location": "westeurope", "properties": {},
    }  # fmt: skip


def test_no_access_to_the_subscription(arm: StandIn) -> None:
    line = one_line(cli(arm, "inventory", "--subscription", FORBIDDEN, *CONNECTOR))
    assert f"no access to subscription {FORBIDDEN} (403 AuthorizationFailed)" in line
    assert "Security Admin to connect, Reader (or Security Reader) to read" in line


def test_a_token_for_another_tenant(arm: StandIn) -> None:
    other = bearer_token(tenant="0c6b9a1e-1111-2222-3333-444455556666")
    done = cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR,
               CONTAINER_MAPPING_ARM_TOKEN=other)  # fmt: skip
    line = one_line(done)
    assert "ARM refused the token (401: The access token is from the wrong issuer." in line
    assert f"az login --tenant {TENANT}, or AZURE_TENANT_ID={TENANT}" in line
    assert other not in done.stderr + done.stdout and other.split(".")[1] not in done.stderr


def test_throttling_is_retried_then_explained(arm: StandIn) -> None:
    connect(arm)
    arm.arm.throttle = 2
    done = cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR, "--json")
    assert done.returncode == 0, done.stderr  # two 429s, honoured Retry-After, then served
    assert len(arm.arm.calls("GET", r"azureDevOpsOrgs\?")) == 3
    arm.arm.throttle = 100
    line = one_line(cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR))
    assert "ARM is throttling these requests (429, retried 3 times); run again after 1" in line
    assert 100 - arm.arm.throttle == 4  # the request and three retries, no more


def test_defender_plans_off(arm: StandIn) -> None:
    port = free_port()  # nothing listens: the import must stop before posting
    line = one_line(cli(arm, "import", "--subscription", SUBSCRIPTION,
                        "--server", f"http://127.0.0.1:{port}", "--api-key", "k"))  # fmt: skip
    assert (
        f"Defender for Containers and Defender CSPM are both off in subscription {SUBSCRIPTION}"
        in line
    )
    assert "az security pricing create -n Containers --tier standard" in line
    assert not arm.arm.calls("POST", "ResourceGraph")


def test_an_expired_token_fails_before_any_request(arm: StandIn) -> None:
    line = one_line(cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR,
                        CONTAINER_MAPPING_ARM_TOKEN=bearer_token(hours=-1)))  # fmt: skip
    assert "the token in CONTAINER_MAPPING_ARM_TOKEN has expired" in line
    assert arm.arm.requests == []


def test_an_unknown_connector(arm: StandIn) -> None:
    line = one_line(cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR))
    assert "not found in subscription" in line and "(404 ResourceNotFound)" in line


def test_the_service_unreachable_after_reading(arm: StandIn) -> None:
    arm.arm.plans[(SUBSCRIPTION, "CloudPosture")] = "Standard"
    port = free_port()
    line = one_line(cli(arm, "import", "--subscription", SUBSCRIPTION,
                        "--server", f"http://127.0.0.1:{port}", "--api-key", "k"))  # fmt: skip
    assert f"the mapping service at http://127.0.0.1:{port} is not reachable" in line


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:1", "management.azure.com"])
def test_the_endpoint_must_be_https(arm: StandIn, endpoint: str) -> None:
    done = cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR,
               "--arm-endpoint", endpoint)  # fmt: skip
    assert "must be an https:// URL" in one_line(done, code=2)


def test_import_without_access_stops_at_the_first_subscription(arm: StandIn) -> None:
    port = free_port()
    line = one_line(cli(arm, "import", "--subscription", FORBIDDEN,
                        "--server", f"http://127.0.0.1:{port}", "--api-key", "k"))  # fmt: skip
    assert f"reading Defender plan Containers: no access to subscription {FORBIDDEN}" in line
    assert not arm.arm.calls("POST", "ResourceGraph")


def test_the_endpoint_flag_wins_over_the_environment(arm: StandIn) -> None:
    connect(arm)
    elsewhere = {"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:9"}
    done = cli(arm, "inventory", "--subscription", SUBSCRIPTION, *CONNECTOR, "--json",
               "--arm-endpoint", arm.url, **elsewhere)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_answer_cut_short_is_not_taken_for_all(arm: StandIn) -> None:
    from tests.defender.standin import REGISTRY_KEY, finding, registry_id

    arm.arm.plans[(SUBSCRIPTION, "Containers")] = "Standard"
    acr = registry_id(SUBSCRIPTION, "rg", "contosoacr")
    arm.arm.findings = [finding(acr, REGISTRY_KEY, f"CVE-{i}", "High", registry="a.azurecr.io",
                                repository="app", digest="sha256:" + "b" * 64, tags=[])
                        for i in range(9)]  # fmt: skip
    arm.arm.truncate = True
    line = one_line(cli(arm, "import", "--subscription", SUBSCRIPTION, "--json"))
    assert "Azure Resource Graph cut the answer short and gave no $skipToken" in line
