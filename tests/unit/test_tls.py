"""The TLS context: the agent's CA and client certificate, the host's SSL_CERT_*, reuse.

Every test talks to a real HTTPS server on loopback signed by a CA the test makes, so the
client trusts it only through the setting under test.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from container_mapping.http import NO_RETRY, HttpClient, TransportError
from container_mapping.tls import (
    TlsError,
    TlsSettings,
    build_context,
    client_context,
    hashed_directory,
)
from tests.pki import KEY_PASSWORD, Pki, make_pki, serve_https


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[str] = []  # the client certificate's common name, per request

    def do_GET(self) -> None:
        peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
        Hello.peers.append(str(subject.get("commonName", "")))
        body = b'{"hello": "agent"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: Pki) -> Iterator[str]:
    with serve_https(Hello, pki) as httpd:
        yield f"https://127.0.0.1:{httpd.server_port}/hello"


def get(url: str, environ: dict[str, str]) -> int:
    with HttpClient(environ=environ, retry=NO_RETRY, timeout=5) as client:
        return client.request("GET", url).status


def test_a_private_ca_is_trusted_only_through_the_agents_setting(server: str, pki: Pki) -> None:
    with pytest.raises(TransportError) as refused:
        get(server, {})
    assert "TLS certificate is not trusted" in str(refused.value)
    assert "Agent.CAInfo" in str(refused.value)
    assert get(server, {"AGENT_CAINFO": str(pki.ca_file)}) == 200


def test_skip_cert_validation_is_not_honoured(server: str) -> None:
    """The step sends the job's token: an unverified peer must never receive it."""
    with pytest.raises(TransportError):
        get(server, {"AGENT_SKIPCERTVALIDATION": "True"})


def test_ssl_cert_file_of_the_host_is_trusted(server: str, pki: Pki) -> None:
    assert get(server, {"SSL_CERT_FILE": str(pki.ca_file)}) == 200


def test_ssl_cert_file_set_by_a_pipeline_variable_is_not(server: str, pki: Pki) -> None:
    """An earlier step's `task.setvariable variable=SSL_CERT_FILE` must not add trust."""
    environ = {
        "SSL_CERT_FILE": str(pki.ca_file),
        "VSTS_PUBLIC_VARIABLES": json.dumps(["system.debug", "ssl_cert_file"]),
    }
    with pytest.raises(TransportError):
        get(server, environ)
    garbled = {**environ, "VSTS_PUBLIC_VARIABLES": "not json"}
    with pytest.raises(TransportError):
        get(server, garbled)


def test_ssl_cert_dir_of_the_host_is_a_hashed_directory(
    server: str, pki: Pki, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to name a hashed link")
    digest = subprocess.run(  # noqa: S603 - a fixed command on a file the test wrote
        [openssl, "x509", "-subject_hash", "-noout", "-in", str(pki.ca_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    certs = tmp_path / "certs"
    certs.mkdir()
    assert not hashed_directory(str(certs))
    (certs / f"{digest}.0").write_bytes(pki.ca_file.read_bytes())
    assert hashed_directory(str(certs))
    assert get(server, {"SSL_CERT_DIR": str(certs)}) == 200


def test_a_client_certificate_with_an_encrypted_key_is_presented(pki: Pki) -> None:
    environ = {
        "AGENT_CAINFO": str(pki.ca_file),
        "AGENT_CLIENTCERT": str(pki.client_cert),
        "AGENT_CLIENTCERTKEY": str(pki.client_key),
        "AGENT_CLIENTCERTARCHIVE": str(pki.client_key.with_suffix(".pfx")),
        "SECRET_AGENT_CLIENTCERTPASSWORD": KEY_PASSWORD,
    }
    assert TlsSettings.from_environment(environ).secrets == (KEY_PASSWORD,)
    Hello.peers.clear()
    with serve_https(Hello, pki, require_client_cert=True) as httpd:
        url = f"https://127.0.0.1:{httpd.server_port}/hello"
        assert get(url, environ) == 200
        assert Hello.peers == ["test agent"]
        without = {k: v for k, v in environ.items() if not k.startswith("AGENT_CLIENT")}
        with pytest.raises(TransportError):
            get(url, without)


def test_a_wrong_key_password_is_one_clear_error_without_the_password(pki: Pki) -> None:
    settings = TlsSettings(
        ca_file=str(pki.ca_file),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
        client_password="not the password",  # noqa: S106 - a test value
    )
    with pytest.raises(TlsError) as failed:
        build_context(settings)
    assert "Agent.ClientCert" in str(failed.value)
    assert "not the password" not in str(failed.value)
    assert "not the password" not in repr(settings)


def test_a_missing_ca_file_names_the_agent_setting(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"Agent\.CAInfo"):
        build_context(TlsSettings(ca_file=str(tmp_path / "absent.pem")))


def test_one_context_per_settings_for_the_whole_process(pki: Pki) -> None:
    settings = TlsSettings.from_environment({"AGENT_CAINFO": str(pki.ca_file)})
    first = client_context(settings)
    assert client_context(TlsSettings(ca_file=str(pki.ca_file))) is first
    assert client_context(TlsSettings()) is not first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname


def test_the_default_trust_verifies_without_reading_a_bundle() -> None:
    """Where OpenSSL's default directory is hashed, nothing is loaded up front."""
    paths = ssl.get_default_verify_paths()
    if not hashed_directory(paths.openssl_capath):
        pytest.skip("this platform's default CA directory is not hashed")
    context = build_context(TlsSettings())
    assert context.cert_store_stats()["x509_ca"] == 0
    assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 0


def test_one_connection_serves_several_requests_to_one_host(pki: Pki) -> None:
    with (
        serve_https(Hello, pki) as httpd,
        HttpClient(environ={"AGENT_CAINFO": str(pki.ca_file)}, retry=NO_RETRY, timeout=5) as client,
    ):
        url = f"https://127.0.0.1:{httpd.server_port}/hello"
        answers = [client.request("GET", url).json() for _ in range(3)]
        assert answers == [{"hello": "agent"}] * 3
        assert httpd.connections == 1


class ClosesAfterEachAnswer(Hello):
    """Says nothing about closing, then closes: a kept connection that went stale."""

    def do_GET(self) -> None:
        super().do_GET()
        self.close_connection = True


def test_a_kept_connection_the_server_closed_is_replaced_at_once(pki: Pki) -> None:
    with (
        serve_https(ClosesAfterEachAnswer, pki) as httpd,
        HttpClient(environ={"AGENT_CAINFO": str(pki.ca_file)}, retry=NO_RETRY, timeout=5) as client,
    ):
        url = f"https://127.0.0.1:{httpd.server_port}/hello"
        assert [client.request("GET", url).status for _ in range(3)] == [200] * 3
        assert httpd.connections == 3
