"""Unit tests of the registry client against a small local server speaking the registry contract.

The server (`FakeRegistry`) answers `/v2/<repo>/manifests/<ref>` like a distribution registry,
challenges with Basic or Bearer when asked to, and runs a token endpoint that follows the
distribution token-auth spec. It records every request so tests can check what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.credentials import Credentials, DockerCredentials
from container_mapping.errors import RegistryError
from container_mapping.http import NO_RETRY, HttpClient
from container_mapping.model import ImageRecord, Verification
from container_mapping.reference import ImageReference
from container_mapping.registry import (
    INSECURE_ENV,
    MANIFEST_TYPES,
    Challenge,
    RegistryClient,
    base_url,
    parse_challenges,
    uses_plain_http,
    verify_records,
)
from tests.servers import serve

IMAGE_ID = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
USER, PASSWORD = "alice", "s3cret-pw"
TOKEN = "tok-abc123"


# ---------------------------------------------------------------- the fake registry


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeRegistry:
    """State of the local server; tests set it up, then read `seen`."""

    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    auth: str | None = None  # None, "basic" or "bearer"
    digest_header: bool = True
    challenge_scope: bool = True
    token_field: str = "token"
    redirects: dict[str, str] = field(default_factory=dict)
    anonymous_tokens: bool = False  # the token service hands anyone a token with no rights
    forbidden: bool = False
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, repository: str, tag: str, body: bytes) -> str:
        self.manifests[(repository, tag)] = body
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def requests_to(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]


def _basic_ok(header: str | None) -> bool:
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return header == f"Basic {expected}"


class _Handler(BaseHTTPRequestHandler):
    state: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self) -> Seen:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            parts.path,
            urllib.parse.parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.state.seen.append(seen)
        return seen

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._route(self._record())

    def do_GET(self) -> None:
        self._route(self._record())

    def do_POST(self) -> None:
        self._route(self._record())

    def _route(self, seen: Seen) -> None:
        if seen.path == "/token":
            self._token(seen)
        elif seen.path.startswith("/v2/") and "/manifests/" in seen.path:
            self._manifest(seen)
        else:
            self._answer(404, {})

    def _token(self, seen: Seen) -> None:
        if seen.method == "POST":
            form = urllib.parse.parse_qs(seen.body.decode())
            allowed = form.get("refresh_token") == ["identity-xyz"]
        else:
            allowed = _basic_ok(seen.headers.get("authorization"))
        if not allowed and self.state.anonymous_tokens:
            self._answer(200, {"Content-Type": "application/json"}, b'{"token":"anonymous"}')
            return
        if not allowed:
            self._answer(401, {"Content-Type": "application/json"}, b'{"details":"bad creds"}')
            return
        body = json.dumps({self.state.token_field: TOKEN, "expires_in": 300}).encode()
        self._answer(200, {"Content-Type": "application/json"}, body)

    def _manifest(self, seen: Seen) -> None:
        repository, _, ref = seen.path[len("/v2/") :].partition("/manifests/")
        if not self._authorized(seen, repository):
            return
        if seen.path in self.state.redirects:
            self._answer(307, {"Location": self.state.redirects[seen.path]})
            return
        body = self.state.manifests.get((repository, ref))
        if self.state.forbidden:
            self._answer(403, {"Content-Type": "application/json"}, b'{"errors":[]}')
            return
        if body is None:
            self._answer(404, {"Content-Type": "application/json"}, b'{"errors":[]}')
            return
        headers = {"Content-Type": MANIFEST_TYPES[0]}
        if self.state.digest_header:
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
        self._answer(200, headers, body)

    def _authorized(self, seen: Seen, repository: str) -> bool:
        given_auth = seen.headers.get("authorization")
        if self.state.auth == "basic" and not _basic_ok(given_auth):
            self._answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        if self.state.auth == "bearer" and given_auth != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="http://{self.state.addr}/token",service="fake-registry"'
            if self.state.challenge_scope:
                challenge += f',scope="repository:{repository}:pull"'
            self._answer(401, {"WWW-Authenticate": challenge})
            return False
        return True


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    state = FakeRegistry()
    handler = type("Handler", (_Handler,), {"state": state})
    with serve(handler) as server:
        state.port = server.server_address[1]
        yield state


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An environment of the test's own: no proxies, no Docker config of the machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def write_config(environ: dict[str, str], config: dict[str, object]) -> Path:
    directory = Path(environ["HOME"]) / ".docker"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic_config(registry: str, user: str = USER, password: str = PASSWORD) -> dict[str, object]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {registry: {"auth": auth}}}


def make_client(environ: dict[str, str]) -> RegistryClient:
    http = HttpClient(timeout=5.0, retry=NO_RETRY, environ=environ)
    return RegistryClient(http, environ=environ)


def ref_for(fake: FakeRegistry, repository: str = "team/app", tag: str = "v1") -> ImageReference:
    return ImageReference(fake.addr, repository, tag)


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


# ---------------------------------------------------------------- scheme choice


@pytest.mark.parametrize(
    "registry", ["localhost", "localhost:5000", "127.0.0.1:5000", "127.9.8.7", "[::1]:5000"]
)
def test_loopback_registries_use_plain_http(registry: str) -> None:
    assert uses_plain_http(registry, {})
    assert base_url(registry, {}).startswith("http://")


@pytest.mark.parametrize("registry", ["myreg.azurecr.io", "10.0.0.5:5000", "localhost.example.com"])
def test_other_registries_use_https(registry: str) -> None:
    assert not uses_plain_http(registry, {})
    assert base_url(registry, {}) == f"https://{registry}"


def test_docker_hub_is_served_by_registry_1() -> None:
    assert base_url("docker.io", {}) == "https://registry-1.docker.io"


def test_insecure_registries_from_the_environment() -> None:
    env = {INSECURE_ENV: " reg.internal:5000 , http://plain.example.com ,other.example.com"}
    assert uses_plain_http("reg.internal:5000", env)
    assert not uses_plain_http("reg.internal:6000", env)  # the port listed is the one meant
    assert uses_plain_http("plain.example.com", env)
    assert uses_plain_http("other.example.com:8443", env)  # no port listed: any port
    assert not uses_plain_http("third.example.com", env)


# ---------------------------------------------------------------- credentials


def test_credentials_from_auths_entry(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("reg.example.com"))
    found = DockerCredentials(directory, environ).lookup("reg.example.com")
    assert found == Credentials(USER, PASSWORD)
    assert PASSWORD not in repr(found)


def test_docker_hub_credentials_use_the_index_key(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("https://index.docker.io/v1/"))
    assert DockerCredentials(directory, environ).lookup("docker.io") == Credentials(USER, PASSWORD)


def test_auths_key_with_scheme_and_path_matches_the_host(environ: dict[str, str]) -> None:
    directory = write_config(environ, basic_config("https://reg.example.com/v2/"))
    store = DockerCredentials(directory, environ)
    assert store.lookup("reg.example.com") == Credentials(USER, PASSWORD)
    assert store.lookup("other.example.com") is None


def test_identity_token_entry(environ: dict[str, str]) -> None:
    directory = write_config(environ, {"auths": {"r.example.com": {"identitytoken": "idt"}}})
    found = DockerCredentials(directory, environ).lookup("r.example.com")
    assert found == Credentials(identity_token="idt")
    assert found is not None and found.basic() is None


def test_missing_or_broken_config_means_no_credentials(environ: dict[str, str]) -> None:
    directory = Path(environ["HOME"]) / "nowhere"
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{not json")
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None


def install_helper(environ: dict[str, str], name: str, script: str) -> Path:
    """A `docker-credential-<name>` program on the test environment's PATH."""
    path = Path(environ["PATH"].split(":")[0]) / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_cred_helper_gets_the_server_on_stdin(environ: dict[str, str]) -> None:
    log = Path(environ["HOME"]) / "helper-input"
    install_helper(
        environ,
        "fake",
        f'cat >> {log}\necho \'{{"ServerURL":"x","Username":"bob","Secret":"hunter2"}}\'\n',
    )
    directory = write_config(environ, {"credHelpers": {"reg.example.com": "fake"}})
    store = DockerCredentials(directory, environ)
    assert store.lookup("reg.example.com") == Credentials("bob", "hunter2")
    assert store.lookup("reg.example.com") == Credentials("bob", "hunter2")
    assert log.read_text() == "reg.example.com"  # asked once, remembered


def test_creds_store_for_docker_hub_and_identity_tokens(environ: dict[str, str]) -> None:
    log = Path(environ["HOME"]) / "helper-input"
    install_helper(
        environ, "store", f'cat > {log}\necho \'{{"Username":"<token>","Secret":"rt"}}\'\n'
    )
    directory = write_config(environ, {"credsStore": "store", "auths": {}})
    found = DockerCredentials(directory, environ).lookup("docker.io")
    assert found == Credentials(identity_token="rt")
    assert log.read_text() == "https://index.docker.io/v1/"


def test_failing_or_missing_helper_falls_back_to_auths(environ: dict[str, str]) -> None:
    install_helper(environ, "broken", "echo 'credentials not found in native keychain'\nexit 1\n")
    config = basic_config("a.example.com") | {
        "credHelpers": {"a.example.com": "broken", "b.example.com": "absent"}
    }
    config["auths"]["b.example.com"] = config["auths"]["a.example.com"]  # type: ignore[index]
    store = DockerCredentials(write_config(environ, config), environ)
    assert store.lookup("a.example.com") == Credentials(USER, PASSWORD)
    assert store.lookup("b.example.com") == Credentials(USER, PASSWORD)


def test_helper_name_with_a_path_is_not_run(environ: dict[str, str]) -> None:
    marker = Path(environ["HOME"]) / "ran"
    install_helper(environ, "x", f"touch {marker}\n")
    directory = write_config(environ, {"credsStore": "../bin/docker-credential-x"})
    assert DockerCredentials(directory, environ).lookup("r.example.com") is None
    assert not marker.exists()


def test_docker_config_env_var_chooses_the_directory(
    environ: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps(basic_config("r.example.com")))
    client = RegistryClient(environ=environ | {"DOCKER_CONFIG": str(elsewhere)})
    assert client.credentials.path == elsewhere / "config.json"
    assert client.credentials.lookup("r.example.com") == Credentials(USER, PASSWORD)


# ---------------------------------------------------------------- resolve_digest


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
    assert _basic_ok(token_request.headers.get("authorization"))
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


# ---------------------------------------------------------------- verify_records


def record(ref: ImageReference, digest: str | None, pushed: bool = True) -> ImageRecord:
    return ImageRecord(reference=ref.with_digest(digest), image_id=IMAGE_ID, pushed=pushed)


def test_verify_records_sets_each_status(fake: FakeRegistry, environ: dict[str, str]) -> None:
    good = fake.add("team/app", "v1", b'{"a":1}')
    fresh = fake.add("team/app", "v2", b'{"a":2}')
    verified = record(ref_for(fake, tag="v1"), good)
    moved = record(ref_for(fake, tag="v1"), OTHER_DIGEST)
    missing = record(ref_for(fake, tag="gone"), OTHER_DIGEST)
    undigested = record(ref_for(fake, tag="v2"), None)

    out = verify_records([verified, moved, missing, undigested], make_client(environ))

    assert out[0].verification is Verification.VERIFIED and out[0].registry_digest == good
    assert out[1].verification is Verification.MISMATCH
    assert out[1].registry_digest == good and out[1].digest == OTHER_DIGEST
    assert out[1].note and good in out[1].note
    assert out[2].verification is Verification.UNAVAILABLE
    assert out[2].note and "HTTP 404" in out[2].note and out[2].digest == OTHER_DIGEST
    assert out[3].verification is Verification.VERIFIED
    assert out[3].digest == fresh and out[3].registry_digest == fresh
    assert out[3].note and "from the registry" in out[3].note


def test_verify_records_asks_once_per_reference(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    digest = fake.add("team/app", "v1", b"{}")
    records = [
        record(ref_for(fake), digest),
        record(ref_for(fake), None),
        record(ref_for(fake), digest),
    ]
    out = verify_records(records, make_client(environ))
    assert [r.verification for r in out] == [Verification.VERIFIED] * 3
    assert len(fake.seen) == 1


def test_verify_records_leaves_unpushed_and_untagged_records(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    local = record(ref_for(fake), None, pushed=False)
    by_digest = ImageRecord(
        ImageReference(fake.addr, "team/app", None, OTHER_DIGEST), IMAGE_ID, pushed=True
    )
    assert verify_records([local, by_digest], make_client(environ)) == (local, by_digest)
    assert fake.seen == []


def test_verify_records_keeps_an_earlier_note_and_never_raises(environ: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ImageReference(f"127.0.0.1:{port}", "team/app", "v1")
    original = ImageRecord(ref.with_digest(OTHER_DIGEST), IMAGE_ID, pushed=True, note="earlier")
    (out,) = verify_records([original], make_client(environ))
    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None and out.note.startswith("earlier; could not reach registry")


def test_verify_records_after_the_deadline_marks_unavailable(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    digest = fake.add("team/app", "v1", b"{}")
    (out,) = verify_records([record(ref_for(fake), digest)], make_client(environ), deadline=0.0)
    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None and "time budget" in out.note
    assert fake.seen == []
