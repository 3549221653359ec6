"""The service's configuration: defaults, file, environment, and bad values named by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from container_mapping.errors import ConfigError
from container_mapping.service import config

ORG = "5e3a7c1d-2b4f-4a6e-9c8d-0f1e2d3c4b5a"


def org(**extra: Any) -> dict[str, Any]:
    return {"name": "contoso", "id": ORG, **extra}


def test_the_embedded_default() -> None:
    settings = config.load(None, environ={})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.database == "sqlite:///./mappings.db"
    assert settings.max_body == 1024 * 1024 and settings.organizations == ()


def test_an_organization_gets_azure_devops_defaults() -> None:
    settings = config.from_dict({"organizations": [org(id=ORG.upper())]})
    [found] = settings.organizations
    assert found.id == ORG  # normalised, as the org_id claim is compared
    assert found.issuer == f"https://vstoken.dev.azure.com/{ORG}"
    assert found.audience == "api://AzureADTokenExchange"
    assert settings.organization(ORG.upper()) is found


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "service.yml"
    key = config.hash_key("secret-key")
    path.write_text(
        "database: sqlite:////var/lib/cm/m.db\nlisten: 0.0.0.0:9000\norganizations:\n"
        f"  - name: contoso\n    id: {ORG}\n"
        f"    api_keys:\n      - {{name: dash, sha256: {key}, scopes: [read, link]}}\n"
    )
    settings = config.load(str(path), environ={"CONTAINER_MAPPING_LISTEN": "[::1]:8081",
                                               "CONTAINER_MAPPING_MAX_BODY": "2048"})  # fmt: skip
    assert settings.database == "sqlite:////var/lib/cm/m.db"
    assert (settings.host, settings.port, settings.max_body) == ("::1", 8081, 2048)
    [api_key] = settings.organizations[0].api_keys
    assert api_key.sha256 == key and api_key.scopes == {"read", "link"}
    via_env = config.load(None, environ={"CONTAINER_MAPPING_CONFIG": str(path)})
    assert via_env.port == 9000


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"listen": "localhost"}, "listen"),
        ({"listen": "127.0.0.1:70000"}, "listen"),
        ({"database": "mysql://x"}, "database"),
        ({"max_body": 0}, "max_body"),
        ({"max_body": "lots"}, "max_body"),
        ({"colour": "blue"}, "colour"),
        ({"organizations": {"name": "x"}}, "organizations"),
        ({"organizations": [{"name": "x", "id": "not-a-guid"}]}, "organizations[0].id"),
        ({"organizations": [org(issuer="http://vstoken.example.com/x")]},
         "organizations[0].issuer"),
        ({"organizations": [org(issuer="ftp://127.0.0.1/x")]}, "organizations[0].issuer"),
        ({"organizations": [org(api_keys=[{"name": "k", "sha256": "abc"}])]},
         "organizations[0].api_keys[0].sha256"),
        ({"organizations": [org(api_keys=[{"name": "k", "sha256": "a" * 64,
                                           "scopes": ["admin"]}])]},
         "organizations[0].api_keys[0].scopes"),
        ({"organizations": [org(), org(name="other")]}, "organizations[1].id"),
        ({"organizations": [org(api_keys=[{"name": "k", "sha256": "a" * 64}]),
                            org(name="b", id=ORG.replace("5", "6"),
                                api_keys=[{"name": "k", "sha256": "a" * 64}])]},
         "organizations[1].api_keys[0].sha256"),
        ({"trust": {"leeway": -1}}, "trust.leeway"),
    ],
)  # fmt: skip
def test_a_bad_value_names_its_key(document: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_dict(document)
    assert key in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"])
def test_http_issuers_only_on_loopback(host: str) -> None:
    settings = config.from_dict({"organizations": [org(issuer=f"http://{host}:8000/{ORG}")]})
    assert settings.organizations[0].issuer.startswith("http://")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(tmp_path / "missing.yml"), environ={})
    bad = tmp_path / "bad.yml"
    bad.write_text("organizations: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(str(bad), environ={})
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load(str(bad), environ={})
