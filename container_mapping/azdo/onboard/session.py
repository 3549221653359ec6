"""Credentials and SDK connections: one `Connection` per organization URL, clients prepared.

A PAT from `AZURE_DEVOPS_EXT_PAT` (the variable the Azure CLI's devops extension reads) wins;
otherwise azure-identity's `DefaultAzureCredential` (environment service principal, workload
identity, managed identity, Azure CLI...) is asked for Azure DevOps' Entra resource. Every
client gets the failure recorder's hook, the user agent and the request timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from container_mapping import __version__
from container_mapping.azdo.onboard.failures import (
    PAT_VARIABLE,
    Recorder,
    ServiceError,
    call,
    write,
)

AZDO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
USER_AGENT = f"container-mapping/{__version__}"
T = TypeVar("T")


def credentials() -> Any:
    """msrest credentials: the PAT from the environment, or an Entra token source."""
    from msrest.authentication import BasicAuthentication

    pat = os.environ.get(PAT_VARIABLE, "").strip()
    if pat:
        return BasicAuthentication("", pat)
    return EntraAuthentication()


class EntraAuthentication:
    """msrest `Authentication` that asks azure-identity for a token on every session it signs.

    azure-identity caches and refreshes the token itself, so a run longer than its lifetime
    keeps working; nothing here stores it.
    """

    def __init__(self, credential: Any = None) -> None:
        """`credential`: any azure-core `TokenCredential`; default azure-identity's chain."""
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self._credential = credential

    def signed_session(self, session: Any = None) -> Any:
        import requests

        session = session or requests.Session()
        try:
            token = self._credential.get_token(AZDO_SCOPE).token
        except Exception as err:  # azure-identity raises ClientAuthenticationError and kin
            raise ServiceError(
                "no Entra token for Azure DevOps (" + type(err).__name__ + ")",
                "sign in with `az login`, run in a pipeline with a workload-identity service "
                f"connection, or set {PAT_VARIABLE} to a PAT",
            ) from None
        session.headers["Authorization"] = f"Bearer {token}"
        return session


class Connections:
    """One SDK `Connection` per base URL, clients with our hook, user agent and timeout."""

    def __init__(self, creds: Any, timeout: float, recorder: Recorder) -> None:
        self.creds = creds
        self.timeout = timeout
        self.recorder = recorder
        self._connections: dict[str, Any] = {}

    def client(self, base_url: str, factory: str) -> Any:
        """`factory` names a `clients_v7_1` getter, such as `get_core_client`."""
        from azure.devops.connection import Connection

        connection = self._connections.get(base_url)
        if connection is None:
            connection = Connection(base_url=base_url, creds=self.creds, user_agent=USER_AGENT)
            self._connections[base_url] = connection
        sdk_client = self.call(
            lambda: getattr(connection.clients_v7_1, factory)(), "discovery", base_url
        )
        self.prepare(sdk_client)
        return sdk_client

    def call(self, function: Callable[[], T], what: str, where: str) -> T:
        """A read through the SDK (which retries it); its failure as a `ServiceError`."""
        self.recorder.reset()
        return call(function, what, where, self.recorder)

    def write(self, function: Callable[[], T], what: str, where: str) -> T:
        """A POST, PATCH or DELETE, given one more try after a 429's `Retry-After`."""
        return write(function, what, where, self.recorder)

    def location_client(self, base_url: str) -> Any:
        from azure.devops.v7_1.location.location_client import LocationClient

        location = LocationClient(base_url, self.creds)
        location.add_user_agent(USER_AGENT)
        self.prepare(location)
        return location

    def settings_client(self, base_url: str) -> Any:
        from azure.devops.v7_1.settings.settings_client import SettingsClient

        settings = SettingsClient(base_url, self.creds)
        settings.add_user_agent(USER_AGENT)
        self.prepare(settings)
        return settings

    def prepare(self, sdk_client: Any) -> None:
        if self.recorder.hook not in sdk_client.config.hooks:
            sdk_client.config.hooks.append(self.recorder.hook)
        sdk_client.config.connection.timeout = self.timeout
