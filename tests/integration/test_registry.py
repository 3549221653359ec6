"""The registry client against the real `docker-registry`, with images the real engine pushed.

Three registries: the shared one from `scripts/services.sh` (no auth), and two this module
starts on free loopback ports: one with `auth: htpasswd` (Basic) and one with `auth: token`
whose token service is a small RS256 JWT issuer written here, as the distribution token spec
describes it. The engine treats loopback registries as insecure, so it pushes over HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from container_mapping.model import ImageRecord, Verification
from container_mapping.reference import ImageReference
from container_mapping.registry import RegistryClient, verify_records
from tests.integration.images import build, push
from tests.servers import serve

pytestmark = pytest.mark.docker

USER, PASSWORD = "pipeline", "correct-horse-42"
IMAGE_ID = "sha256:" + "0" * 64


# ---------------------------------------------------------------- images


@pytest.fixture
def pushed_image(docker_client: Any) -> Iterator[Callable[..., str]]:
    """Build, tag and push a tiny image; removes the local image afterwards."""
    created: list[str] = []

    def make(repository: str, tag: str = "v1", auth: dict[str, str] | None = None) -> str:
        name = f"{repository}:{tag}"
        build(docker_client, name)
        created.append(name)
        return push(docker_client, name, auth)

    yield make
    for name in created:
        docker_client.images.remove(name, force=True)


def environ_with_config(tmp_path: Path, registry: str, password: str) -> dict[str, str]:
    """An environment whose DOCKER_CONFIG holds `docker login`-style credentials."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(config_dir), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}


# ---------------------------------------------------------------- registries we start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(addr: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise AssertionError(f"docker-registry exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://{addr}/v2/", timeout=1).close()  # noqa: S310
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"docker-registry at {addr} did not start")


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start `docker-registry` with the given `auth:` YAML block; returns its address."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(auth_yaml: str) -> str:
        addr = f"127.0.0.1:{free_port()}"
        storage = tmp_path / f"storage-{len(processes)}"
        config = tmp_path / f"registry-{len(processes)}.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"http:\n  addr: {addr}\n{auth_yaml}"
        )
        with (tmp_path / f"registry-{len(processes)}.log").open("wb") as log:
            command = ["docker-registry", "serve", str(config)]
            process = subprocess.Popen(command, stdout=log, stderr=log)
        processes.append(process)
        wait_until_serving(addr, process)
        return addr

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def basic_registry(start_registry: Callable[[str], str], tmp_path: Path) -> str:
    try:
        import bcrypt
    except ImportError:  # a test extra; in CI a skip here would hide the Basic-auth tests
        if os.environ.get("CI"):
            pytest.fail("bcrypt is missing: pip install bcrypt")
        pytest.skip("bcrypt is missing: pip install bcrypt")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{hashed}\n")
    return start_registry(f"auth:\n  htpasswd:\n    realm: cm-test\n    path: {htpasswd}\n")


# ---------------------------------------------------------------- a token service


@dataclass
class TokenService:
    """Issues RS256 JWTs the registry trusts through `rootcertbundle`; records requests."""

    key: Any
    cert_der: bytes
    issuer: str = "cm-test-issuer"
    service: str = "cm-test-registry"
    requests: list[tuple[dict[str, list[str]], str | None]] = field(default_factory=list)
    port: int = 0

    def token(self, subject: str, scopes: list[str]) -> str:
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header))}.{_b64url(json.dumps(claims))}"
        return f"{signing_input}.{_b64url(self._sign(signing_input.encode()))}"

    def _sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return bytes(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def _b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _self_signed() -> tuple[Any, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cm-test token issuer")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return key, cert.public_bytes(serialization.Encoding.DER), pem


class _TokenHandler(BaseHTTPRequestHandler):
    service: TokenService

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        authorization = self.headers.get("Authorization")
        self.service.requests.append((query, authorization))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if parts.path != "/token" or authorization != expected:
            self._reply(401, {"details": "unauthorized"})
            return
        token = self.service.token(USER, query.get("scope", []))
        self._reply(200, {"token": token, "expires_in": 300})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def token_service() -> Iterator[TokenService]:
    key, der, _ = _self_signed()
    service = TokenService(key, der)
    handler = type("Handler", (_TokenHandler,), {"service": service})
    with serve(handler) as server:
        service.port = server.server_address[1]
        yield service


@pytest.fixture
def token_registry(
    start_registry: Callable[[str], str], token_service: TokenService, tmp_path: Path
) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    bundle = tmp_path / "token-root.pem"
    cert = x509.load_der_x509_certificate(token_service.cert_der)
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return start_registry(
        "auth:\n  token:\n"
        f"    realm: http://127.0.0.1:{token_service.port}/token\n"
        f"    service: {token_service.service}\n"
        f"    issuer: {token_service.issuer}\n"
        f"    rootcertbundle: {bundle}\n"
    )


# ---------------------------------------------------------------- tests


def test_resolves_exactly_the_digest_docker_pushed(
    unique_repo: str, pushed_image: Callable[..., str]
) -> None:
    digest = pushed_image(unique_repo)
    ref = ImageReference.parse(f"{unique_repo}:v1")
    assert RegistryClient(environ={}).resolve_digest(ref) == digest


def test_verify_records_against_the_shared_registry(
    unique_repo: str, pushed_image: Callable[..., str]
) -> None:
    digest = pushed_image(unique_repo)
    ref = ImageReference.parse(f"{unique_repo}:v1")
    records = [
        ImageRecord(ref.with_digest(digest), IMAGE_ID, pushed=True),
        ImageRecord(ref, IMAGE_ID, pushed=True),
        ImageRecord(ref.with_digest("sha256:" + "f" * 64), IMAGE_ID, pushed=True),
        ImageRecord(ImageReference.parse(f"{unique_repo}:absent"), IMAGE_ID, pushed=True),
    ]
    out = verify_records(records, RegistryClient(environ={}), time.monotonic() + 60)
    assert [r.verification for r in out] == [
        Verification.VERIFIED,
        Verification.VERIFIED,
        Verification.MISMATCH,
        Verification.UNAVAILABLE,
    ]
    assert out[1].digest == digest
    assert out[2].registry_digest == digest
    assert out[3].note is not None and "HTTP 404" in out[3].note


@pytest.fixture
def basic_pushed(
    basic_registry: str, pushed_image: Callable[..., str]
) -> tuple[ImageReference, str]:
    """An image pushed, with credentials, to the htpasswd registry: its reference and digest."""
    repository = f"{basic_registry}/cmtest/basic"
    digest = pushed_image(repository, auth={"username": USER, "password": PASSWORD})
    return ImageReference.parse(f"{repository}:v1"), digest


def test_basic_auth_registry_with_credentials_from_docker_config(
    basic_registry: str, basic_pushed: tuple[ImageReference, str], tmp_path: Path
) -> None:
    ref, digest = basic_pushed
    client = RegistryClient(environ=environ_with_config(tmp_path, basic_registry, PASSWORD))
    assert client.resolve_digest(ref) == digest

    (out,) = verify_records([ImageRecord(ref.with_digest(digest), IMAGE_ID, pushed=True)], client)
    assert out.verification is Verification.VERIFIED


def test_basic_auth_registry_with_wrong_credentials(
    basic_registry: str, basic_pushed: tuple[ImageReference, str], tmp_path: Path
) -> None:
    ref, digest = basic_pushed
    wrong = "not-the-password-77"

    client = RegistryClient(environ=environ_with_config(tmp_path, basic_registry, wrong))
    (out,) = verify_records([ImageRecord(ref.with_digest(digest), IMAGE_ID, pushed=True)], client)

    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None
    assert f"401 from registry {basic_registry} for repository cmtest/basic" in out.note
    assert f"docker login {basic_registry}" in out.note
    assert wrong not in out.note
    assert base64.b64encode(f"{USER}:{wrong}".encode()).decode() not in out.note


def test_token_auth_registry(
    token_registry: str,
    token_service: TokenService,
    pushed_image: Callable[..., str],
    tmp_path: Path,
) -> None:
    repository = f"{token_registry}/cmtest/token"
    digest = pushed_image(repository, auth={"username": USER, "password": PASSWORD})
    token_service.requests.clear()
    ref = ImageReference.parse(f"{repository}:v1")

    client = RegistryClient(environ=environ_with_config(tmp_path, token_registry, PASSWORD))
    assert client.resolve_digest(ref) == digest

    (query, authorization) = token_service.requests[-1]
    assert query["scope"] == ["repository:cmtest/token:pull"]
    assert query["service"] == [token_service.service]
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert authorization == expected


def test_token_auth_registry_without_credentials_is_unavailable(
    token_registry: str, tmp_path: Path
) -> None:
    ref = ImageReference.parse(f"{token_registry}/cmtest/token:v1")
    environ = {"DOCKER_CONFIG": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    record = ImageRecord(ref.with_digest("sha256:" + "a" * 64), IMAGE_ID, pushed=True)
    (out,) = verify_records([record], RegistryClient(environ=environ))
    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None and "without credentials" in out.note
    assert f"docker login {token_registry}" in out.note
