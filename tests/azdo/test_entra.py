"""The Entra path: an azure-core token credential signs every SDK request, scope Azure DevOps.

The credential is the one seam: a token source implementing azure-core's `TokenCredential`
protocol (no network to Entra here); everything after it is the real SDK and the stand-in.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from container_mapping.azdo.onboard.failures import Recorder
from container_mapping.azdo.onboard.model import Extension, Status, Target
from container_mapping.azdo.onboard.run import Options, onboard_one
from container_mapping.azdo.onboard.session import AZDO_SCOPE, Connections, EntraAuthentication
from container_mapping.azdo.onboard.state import load
from tests.azdo.standin import Org, World

pytestmark = pytest.mark.azdo


class TokenSource:
    """azure-core's TokenCredential protocol; `fail` raises as azure-identity does."""

    def __init__(self, token: str, fail: bool = False) -> None:
        self.token, self.fail = token, fail
        self.scopes: set[str] = set()

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        if self.fail:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
        self.scopes.update(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_entra_token_onboards_like_a_pat(world: World, base: str, state_dir: Path) -> None:
    world.bearer = "entra-access-token"
    org = world.add(Org("entra", oauth_disallowed=True))
    source = TokenSource("entra-access-token")
    connections = Connections(EntraAuthentication(source), 10, Recorder())
    target = Target("entra", f"{base}/entra")
    outcome = onboard_one(connections, target, Options(Extension("container-mapping",
                          "container-mapping", "1.0.0")), load("default"))  # fmt: skip
    assert outcome.status is Status.DONE, outcome
    assert source.scopes == {AZDO_SCOPE}
    assert org.installed == {"version": "1.0.0", "flags": "none"}
    policy = [c for c in outcome.checks if c.name.startswith("OAuth")][0]
    assert policy.detail == "appears off"  # the portal route is signed with the token too


def test_no_entra_token_names_the_ways_to_sign_in(world: World, base: str, state_dir: Path) -> None:
    world.add(Org("nobody"))
    connections = Connections(EntraAuthentication(TokenSource("x", fail=True)), 10, Recorder())
    outcome = onboard_one(connections, Target("nobody", f"{base}/nobody"),
                          Options(Extension("p", "e", "1.0.0")), load("default"))  # fmt: skip
    assert outcome.status is Status.FAILED
    assert "no Entra token" in outcome.cause and "az login" in outcome.fix
    assert "AZURE_DEVOPS_EXT_PAT" in outcome.fix
