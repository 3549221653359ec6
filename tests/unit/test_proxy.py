"""The agent's proxy: Basic credentials to the proxy only, no user-info anywhere, the bypass list.

A forward proxy written here (CONNECT tunnels and plain-HTTP absolute-URI requests) requires
Basic credentials and records every request head it receives; behind it, an HTTPS server
signed by a private CA the client trusts through the agent's `Agent.CAInfo`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import select
import socket
import socketserver
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from container_mapping.http import NO_RETRY, HttpClient, TransportError
from container_mapping.proxy import (
    ProxyError,
    ProxySettings,
    is_loopback,
    parse_proxy,
    secrets_to_mask,
)
from tests.pki import TEST_HOST, Pki, make_pki, serve_https
from tests.servers import running

USER, PASSWORD = "corp\\builder", "p@ss:w0rd/%41"


@dataclass
class Seen:
    heads: list[list[str]] = field(default_factory=list)  # request line, then header lines

    def request_lines(self) -> list[str]:
        return [head[0] for head in self.heads]

    def header(self, index: int, name: str) -> str | None:
        for line in self.heads[index][1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class ForwardProxy(socketserver.ThreadingTCPServer):
    """CONNECT to `TEST_HOST:port` tunnels to 127.0.0.1:port; plain requests are answered here."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials: str) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.credentials = credentials
        self.seen = Seen()


class ProxyHandler(socketserver.BaseRequestHandler):
    server: ForwardProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        text, _, rest = head.partition(b"\r\n\r\n")
        lines = text.decode("latin-1").split("\r\n")
        self.server.seen.heads.append(lines)
        given = next(
            (h.split(":", 1)[1].strip() for h in lines[1:] if h.lower().startswith("proxy-auth")),
            None,
        )
        if given != self.server.credentials:
            self.request.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        method, target, _ = lines[0].split(" ")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            assert host == TEST_HOST
            self.tunnel(int(port), rest)
        else:
            body = b"answered by the proxy"
            self.request.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )

    def tunnel(self, port: int, rest: bytes) -> None:
        upstream = socket.create_connection(("127.0.0.1", port))
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        pair = {self.request: upstream, upstream: self.request}
        with upstream:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 5)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)


@contextlib.contextmanager
def forward_proxy(credentials: str) -> Iterator[ForwardProxy]:
    with running(ForwardProxy(credentials)) as proxy:
        yield proxy


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    heads: list[dict[str, str]] = []

    def do_POST(self) -> None:
        Echo.heads.append({k.lower(): v for k, v in self.headers.items()})
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def agent_environ(proxy: ForwardProxy, pki: Pki, password: str = PASSWORD) -> dict[str, str]:
    """What the agent gives a task on a host configured with an authenticated proxy."""
    return {
        "AGENT_PROXYURL": f"http://127.0.0.1:{proxy.server_address[1]}",
        "AGENT_PROXYUSERNAME": USER,
        "SECRET_AGENT_PROXYPASSWORD": password,
        "VSTS_SECRET_VARIABLES": json.dumps(["agent.proxypassword"]),
        "AGENT_CAINFO": str(pki.ca_file),
    }


def test_https_goes_through_an_authenticated_tunnel(pki: Pki) -> None:
    Echo.heads.clear()
    with serve_https(Echo, pki) as server, forward_proxy(basic(USER, PASSWORD)) as proxy:
        url = f"https://{TEST_HOST}:{server.server_port}/ingest?api-version=1"
        with HttpClient(environ=agent_environ(proxy, pki), retry=NO_RETRY, timeout=5) as http:
            for n in range(2):
                answer = http.request("POST", url, json={"n": n})
                assert (answer.status, answer.json()) == (201, {"n": n})
    port = server.server_port
    # One tunnel for both requests; its CONNECT carries the credentials and nothing else does.
    [connect] = proxy.seen.request_lines()
    assert connect.startswith(f"CONNECT {TEST_HOST}:{port} HTTP/1.")
    assert proxy.seen.header(0, "Proxy-Authorization") == basic(USER, PASSWORD)
    assert len(Echo.heads) == 2
    assert all("proxy-authorization" not in head for head in Echo.heads)
    assert Echo.heads[0]["host"] == f"{TEST_HOST}:{port}"


def test_a_refused_password_is_an_error_that_does_not_repeat_it(pki: Pki) -> None:
    with forward_proxy(basic(USER, PASSWORD)) as proxy:
        environ = agent_environ(proxy, pki, password="wrong-secret-value")
        with (
            pytest.raises(TransportError) as refused,
            HttpClient(environ=environ, retry=NO_RETRY, timeout=5) as http,
        ):
            http.request("GET", f"https://{TEST_HOST}:1/")
    assert "proxy refused the tunnel (HTTP 407)" in str(refused.value)
    assert "wrong-secret-value" not in str(refused.value)
    assert USER not in str(refused.value)


def test_plain_http_sends_the_absolute_url_without_user_info(pki: Pki) -> None:
    with forward_proxy(basic(USER, PASSWORD)) as proxy:
        url = f"http://someone:hunter2@{TEST_HOST}:8080/api/mappings?key=v"
        with HttpClient(environ=agent_environ(proxy, pki), retry=NO_RETRY, timeout=5) as http:
            answer = http.request("GET", url)
    assert answer.body == b"answered by the proxy"
    assert proxy.seen.request_lines() == [
        f"GET http://{TEST_HOST}:8080/api/mappings?key=v HTTP/1.1"
    ]
    assert proxy.seen.header(0, "Host") == f"{TEST_HOST}:8080"
    assert proxy.seen.header(0, "Proxy-Authorization") == basic(USER, PASSWORD)
    assert "hunter2" not in "\n".join(proxy.seen.heads[0])


def test_the_hosts_https_proxy_with_credentials_in_its_url(pki: Pki) -> None:
    with serve_https(Echo, pki) as server, forward_proxy(basic("u", "p w")) as proxy:
        environ = {
            "https_proxy": f"http://u:p%20w@127.0.0.1:{proxy.server_address[1]}",
            "AGENT_CAINFO": str(pki.ca_file),
        }
        with HttpClient(environ=environ, retry=NO_RETRY, timeout=5) as http:
            url = f"https://{TEST_HOST}:{server.server_port}/x"
            assert http.request("POST", url, json={}).status == 201
    assert proxy.seen.header(0, "Proxy-Authorization") == basic("u", "p w")
    assert "p w" in secrets_to_mask(environ)


def test_a_proxy_set_by_a_pipeline_variable_is_ignored() -> None:
    """An earlier step's `task.setvariable variable=https_proxy` must not route the token."""
    environ = {
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "VSTS_PUBLIC_VARIABLES": json.dumps(["https_proxy"]),
    }
    assert ProxySettings.from_environment(environ).for_url("https://dev.azure.com/x") is None
    host_set = {"HTTPS_PROXY": "http://127.0.0.1:9", "VSTS_PUBLIC_VARIABLES": "[]"}
    proxy = ProxySettings.from_environment(host_set).for_url("https://dev.azure.com/x")
    assert proxy is not None and proxy.address == "127.0.0.1:9"


@pytest.mark.parametrize(
    ("url", "bypassed"),
    [
        ("https://dev.azure.com/fabrikam/_apis", False),
        ("https://build.corp.example/_apis", True),  # unanchored, like no_proxy's conversion
        ("https://BUILD.Corp.Example:443/x", True),  # case-insensitive
        ("https://registry.internal:5000/v2/", True),  # the agent's scheme://host:port form
        ("https://registry.internal/v2/", False),
        ("https://api.example/health/check", True),  # task-lib's reading: the whole URL
        ("https://127.0.0.1:8443/", True),  # loopback never goes through the proxy
        ("https://localhost/", True),
    ],
)
def test_the_agents_bypass_list(url: str, bypassed: bool) -> None:
    environ = {
        "AGENT_PROXYURL": "http://proxy.corp.example:3128",
        "AGENT_PROXYBYPASSLIST": json.dumps(
            [
                "corp\\.example",
                "^https://registry\\.internal:5000$",
                "/health/",
                "([unbalanced",  # skipped, as the agent skips what it cannot compile
            ]
        ),
    }
    settings = ProxySettings.from_environment(environ)
    assert (settings.for_url(url) is None) is bypassed
    # the proxy's own name is not bypassed by its domain: the list is about destinations
    assert settings.https is not None and settings.https.address == "proxy.corp.example:3128"


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("corp.example", "https://build.corp.example/x", True),
        (".corp.example", "https://corp.example/x", True),
        ("corp.example", "https://notcorp.example/x", False),
        ("*", "https://anything.example/", True),
        ("registry.internal:5000", "https://registry.internal:5000/v2/", True),
        ("registry.internal:5000", "https://registry.internal/v2/", False),
        ("", "https://dev.azure.com/", False),
    ],
)
def test_no_proxy_of_the_host(no_proxy: str, url: str, bypassed: bool) -> None:
    environ = {"https_proxy": "proxy.corp.example:3128", "no_proxy": no_proxy}
    proxy = ProxySettings.from_environment(environ).for_url(url)
    assert (proxy is None) is bypassed


def test_the_agent_proxy_wins_over_the_hosts_variables() -> None:
    environ = {"AGENT_PROXYURL": "http://agent-proxy:8888", "https_proxy": "http://other:1"}
    proxy = ProxySettings.from_environment(environ).for_url("https://dev.azure.com/")
    assert proxy is not None and proxy.address == "agent-proxy:8888"
    assert not proxy.headers


def test_secrets_to_mask_never_raise_and_cover_every_form() -> None:
    environ = {
        "AGENT_PROXYURL": "https://proxy:3128",  # unusable (https://), still masked
        "AGENT_PROXYUSERNAME": USER,
        "SECRET_AGENT_PROXYPASSWORD": PASSWORD,
        "AGENT_CLIENTCERT": "/etc/agent/client.pem",
        "SECRET_AGENT_CLIENTCERTPASSWORD": "cert-secret",
        "HTTPS_PROXY": "http://u:env-secret@proxy:1",
    }
    found = secrets_to_mask(environ)
    assert PASSWORD in found
    assert "cert-secret" in found
    assert "env-secret" in found
    with pytest.raises(ProxyError) as unusable:
        ProxySettings.from_environment(environ)
    assert PASSWORD not in str(unusable.value)
    _, secrets = parse_proxy("http://proxy:1", USER, PASSWORD)
    assert secrets == (PASSWORD, basic(USER, PASSWORD).split()[1])
    assert secrets_to_mask({}) == ()


def test_a_proxy_url_that_is_not_one_is_a_clear_error() -> None:
    for bad in ("http://proxy:port", "socks5://proxy:1080", "http://user:pw@[::1"):
        with pytest.raises(ProxyError) as failed:
            parse_proxy(bad)
        assert "pw" not in str(failed.value)


def test_loopback_names() -> None:
    assert all(
        is_loopback(h) for h in ("localhost", "127.0.0.1", "127.1.2.3", "[::1]", "a.localhost")
    )
    assert not any(is_loopback(h) for h in ("127.evil.example", "10.0.0.1", "example.com"))


def test_settings_do_not_show_secrets_in_repr(tmp_path: Path) -> None:
    settings = ProxySettings.from_environment(
        {
            "AGENT_PROXYURL": "http://proxy:1",
            "AGENT_PROXYUSERNAME": "u",
            "AGENT_PROXYPASSWORD": "zz9",
        }
    )
    assert "zz9" not in repr(settings)
    assert settings.secrets and "zz9" in settings.secrets
