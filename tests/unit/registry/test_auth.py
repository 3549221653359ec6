"""Challenge parsing, and each way of answering a 401 (Basic, Bearer, identity token).

The flows run through `RegistryClient` against the fake registry, since a challenge only
arrives on a real request.
"""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.credentials import DockerCredentials
from container_mapping.errors import RegistryError
from container_mapping.http import NO_RETRY, HttpClient
from container_mapping.registry.auth import Challenge, RegistryAuth, parse_challenges
from tests.unit.docker_config import USER, basic_config, write_config
from tests.unit.registry.fake import TOKEN, FakeRegistry, basic_ok, make_client, ref_for

# ---------------------------------------------------------------- WWW-Authenticate


def test_parses_docker_hub_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert parse_challenges(header) == (
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        ),
    )


def test_parses_several_challenges_with_escapes_and_unquoted_values() -> None:
    header = 'Negotiate abc123==, BASIC Realm="say \\"hi\\"", Bearer realm=https://t/x?a=b , x=1'
    assert parse_challenges(header) == (
        Challenge("negotiate", {}),
        Challenge("basic", {"realm": 'say "hi"'}),
        Challenge("bearer", {"realm": "https://t/x?a=b", "x": "1"}),
    )


def test_parse_of_empty_or_junk_header_gives_nothing_usable() -> None:
    assert parse_challenges("") == ()
    assert parse_challenges(' ,, "=') == ()


_tchar = st.sampled_from(
    "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
)
_token = st.text(_tchar, min_size=1, max_size=12)
_value = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
_challenge = st.tuples(_token, st.dictionaries(_token.map(str.lower), _value, max_size=4))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(_challenge, min_size=1, max_size=3))
def test_parse_round_trips_rendered_challenges(
    challenges: list[tuple[str, dict[str, str]]],
) -> None:
    header = ", ".join(
        " ".join([scheme, ", ".join(f"{k}={_quote(v)}" for k, v in params.items())]).strip()
        for scheme, params in challenges
    )
    expected = tuple(Challenge(scheme.lower(), params) for scheme, params in challenges)
    assert parse_challenges(header) == expected


@given(st.text(max_size=200))
def test_parse_never_raises_and_names_are_lower_case(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(name == name.lower() for name in challenge.params)


# ---------------------------------------------------------------- answering a 401


def test_basic_challenge_is_answered_from_the_docker_config(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "basic"
    digest = fake.add("team/app", "v1", b"{}")
    write_config(environ, basic_config(fake.addr))
    client = make_client(environ)
    assert client.resolve_digest(ref_for(fake)) == digest
    assert client.resolve_digest(ref_for(fake)) == digest
    sent = [s.headers.get("authorization") is not None for s in fake.seen]
    assert sent == [False, True, True]  # the second call reuses the answer


def test_basic_challenge_without_credentials_says_what_to_do(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "basic"
    fake.add("team/app", "v1", b"{}")
    with pytest.raises(RegistryError) as caught:
        make_client(environ).resolve_digest(ref_for(fake))
    message = str(caught.value)
    assert f"401 from registry {fake.addr} for repository team/app" in message
    assert f"docker login {fake.addr}" in message


def test_basic_answer_is_reused_for_other_repositories(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "basic"
    fake.add("team/app", "v1", b"{}")
    digest = fake.add("team/other", "v1", b"{ }")
    write_config(environ, basic_config(fake.addr))
    client = make_client(environ)
    client.resolve_digest(ref_for(fake))
    assert client.resolve_digest(ref_for(fake, "team/other")) == digest
    assert [s.headers.get("authorization") is not None for s in fake.seen] == [False, True, True]


def test_wrong_basic_credentials_never_show_the_password(
    fake: FakeRegistry, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake.auth = "basic"
    fake.add("team/app", "v1", b"{}")
    write_config(environ, basic_config(fake.addr, password="wrong-pw-123"))
    with pytest.raises(RegistryError) as caught:
        make_client(environ).resolve_digest(ref_for(fake))
    assert "not accepted" in str(caught.value)
    encoded = base64.b64encode(f"{USER}:wrong-pw-123".encode()).decode()
    for text in (str(caught.value), caplog.text):
        assert "wrong-pw-123" not in text and encoded not in text


def test_bearer_flow_sends_scope_service_and_basic_credentials(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "bearer"
    digest = fake.add("team/app", "v1", b"{}")
    write_config(environ, basic_config(fake.addr))
    assert make_client(environ).resolve_digest(ref_for(fake)) == digest
    (token_request,) = fake.requests_to("/token")
    assert token_request.method == "GET"
    assert token_request.query == {
        "service": ["fake-registry"],
        "scope": ["repository:team/app:pull"],
    }
    assert basic_ok(token_request.headers.get("authorization"))
    assert fake.seen[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_bearer_scope_defaults_to_pull_and_token_is_cached(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth, fake.challenge_scope, fake.token_field = "bearer", False, "access_token"
    fake.add("team/app", "v1", b"{}")
    digest = fake.add("team/app", "v2", b"{ }")
    write_config(environ, basic_config(fake.addr))
    client = make_client(environ)
    client.resolve_digest(ref_for(fake))
    assert client.resolve_digest(ref_for(fake, tag="v2")) == digest
    (token_request,) = fake.requests_to("/token")
    assert token_request.query["scope"] == ["repository:team/app:pull"]


def test_identity_token_is_exchanged_with_the_refresh_token_grant(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "bearer"
    digest = fake.add("team/app", "v1", b"{}")
    write_config(environ, {"auths": {fake.addr: {"identitytoken": "identity-xyz"}}})
    assert make_client(environ).resolve_digest(ref_for(fake)) == digest
    (token_request,) = fake.requests_to("/token")
    form = urllib.parse.parse_qs(token_request.body.decode())
    assert token_request.method == "POST"
    assert form["grant_type"] == ["refresh_token"]
    assert form["scope"] == ["repository:team/app:pull"]
    assert form["service"] == ["fake-registry"]


def test_refused_token_request_names_the_registry_not_the_secret(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth = "bearer"
    fake.add("team/app", "v1", b"{}")
    write_config(environ, basic_config(fake.addr, password="nope-nope"))
    with pytest.raises(RegistryError) as caught:
        make_client(environ).resolve_digest(ref_for(fake))
    message = str(caught.value)
    assert "HTTP 401 from the token service" in message and f"docker login {fake.addr}" in message
    assert "nope-nope" not in message


def test_anonymous_token_without_rights_says_no_credentials(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    fake.auth, fake.anonymous_tokens = "bearer", True
    fake.add("team/app", "v1", b"{}")
    with pytest.raises(RegistryError) as caught:
        make_client(environ).resolve_digest(ref_for(fake))
    assert "no credentials found" in str(caught.value)
    assert f"run `docker login {fake.addr}`" in str(caught.value)


def test_auth_answers_any_scope_a_caller_names(fake: FakeRegistry, environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config(fake.addr))
    http = HttpClient(timeout=5.0, retry=NO_RETRY, environ=environ)
    auth = RegistryAuth(http, DockerCredentials(directory, environ), environ)
    challenge = f'Bearer realm="http://{fake.addr}/token",service="fake-registry"'
    assert auth.cached(fake.addr, "registry:catalog:*") is None
    header = auth.answer(fake.addr, "registry:catalog:*", challenge, None)
    assert header == f"Bearer {TOKEN}"
    assert auth.cached(fake.addr, "registry:catalog:*") == header
    assert auth.cached(fake.addr, "repository:team/app:pull") is None  # a token is per scope
    (token_request,) = fake.requests_to("/token")
    assert token_request.query["scope"] == ["registry:catalog:*"]


def test_auth_names_the_scope_when_it_is_not_a_repository(environ: dict[str, str]) -> None:
    http = HttpClient(timeout=5.0, retry=NO_RETRY, environ=environ)
    directory = write_config(environ, {})
    auth = RegistryAuth(http, DockerCredentials(directory, environ), environ)
    with pytest.raises(RegistryError, match="for scope 'registry:catalog:\\*' \\(no user"):
        auth.answer("r.example.com", "registry:catalog:*", 'Basic realm="r"', None)
