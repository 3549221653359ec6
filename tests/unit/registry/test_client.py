"""Resolving a tag to the registry's digest: the request, redirects, and each failure."""

from __future__ import annotations

import pytest

from container_mapping.errors import RegistryError
from container_mapping.reference import ImageReference
from container_mapping.registry.client import MANIFEST_TYPES
from tests.unit.docker_config import basic_config, write_config
from tests.unit.registry.fake import FakeRegistry, make_client, ref_for


def test_resolve_without_auth_asks_head_with_every_manifest_type(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    digest = fake.add("team/app", "v1", b'{"schemaVersion":2}')
    assert make_client(environ).resolve_digest(ref_for(fake)) == digest
    (head,) = fake.seen
    assert head.method == "HEAD"
    assert head.path == "/v2/team/app/manifests/v1"
    accepted = {t.strip() for t in head.headers["accept"].split(",")}
    assert accepted == set(MANIFEST_TYPES)


def test_resolve_falls_back_to_hashing_the_manifest(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.digest_header = False
    digest = fake.add("team/app", "v1", b'{"schemaVersion":2,"x":1}')
    assert make_client(environ).resolve_digest(ref_for(fake)) == digest
    assert [s.method for s in fake.seen] == ["HEAD", "GET"]


def test_forbidden_names_the_missing_pull_rights(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.forbidden = True
    with pytest.raises(RegistryError, match="403 from registry .* lack pull rights"):
        make_client(environ).resolve_digest(ref_for(fake))


def test_missing_tag_is_a_clear_404(fake: FakeRegistry, environ: dict[str, str]) -> None:
    with pytest.raises(RegistryError, match="has no manifest team/app:v1 \\(HTTP 404\\)"):
        make_client(environ).resolve_digest(ref_for(fake))


def test_unreachable_registry_is_a_registry_error(environ: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ImageReference(f"127.0.0.1:{port}", "team/app", "v1")
    with pytest.raises(RegistryError, match="could not reach registry"):
        make_client(environ).resolve_digest(ref)


def test_cross_host_redirect_drops_the_authorization(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "basic"
    write_config(environ, basic_config(fake.addr))
    fake.redirects["/v2/team/app/manifests/v1"] = f"http://localhost:{fake.port}/elsewhere"
    with pytest.raises(RegistryError, match="HTTP 404"):
        make_client(environ).resolve_digest(ref_for(fake))
    assert fake.seen[-2].headers.get("authorization")  # the registry itself got it
    (redirected,) = fake.requests_to("/elsewhere")
    assert "authorization" not in redirected.headers


def test_same_host_redirect_keeps_the_authorization(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "basic"
    digest = fake.add("team/app", "moved", b"{}")
    write_config(environ, basic_config(fake.addr))
    fake.redirects["/v2/team/app/manifests/v1"] = "/v2/team/app/manifests/moved"
    assert make_client(environ).resolve_digest(ref_for(fake)) == digest
