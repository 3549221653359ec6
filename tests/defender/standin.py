"""A local Azure Resource Manager that follows the documented contracts the Defender client uses.

HTTPS only (azure-core sends bearer tokens over TLS alone), with a private CA made here. It
serves the security connector (PUT/GET, 2023-10-01-preview), the DevOps configuration as a
long-running operation (201 + `Azure-AsyncOperation`, polled until `Succeeded`, then the final
GET of the resource), the inventory collections paged with `nextLink`, Defender plan pricings,
and Resource Graph's `resources` query paged with `$skipToken`, over rows stored in the shape
Defender publishes sub-assessments in. Refusals follow ARM too: 401 with a `WWW-Authenticate`
challenge for a token it does not know, 403 `AuthorizationFailed` for a subscription the caller
has no role on, 429 with `Retry-After` when told to throttle.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CONNECTOR = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.Security/securityConnectors/(?P<name>[^/]+)"
)


# ---------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> Tls:
    """A private CA and a certificate for 127.0.0.1 and localhost that it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "container-mapping test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca.write_bytes(ca.public_bytes(pem))
    tls.cert.write_bytes(cert.public_bytes(pem))
    tls.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


def bearer_token(hours: float = 1, tenant: str = TENANT) -> str:
    """A JWT-shaped ARM token (unsigned: the stand-in compares it whole, as a secret)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    exp = int(datetime.datetime.now(datetime.timezone.utc).timestamp() + hours * 3600)
    claims = {
        "aud": "https://management.azure.com/",
        "tid": tenant,
        "exp": exp,
        "jti": uuid.uuid4().hex,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# ---------------------------------------------------------------- state


@dataclass
class Arm:
    """What the stand-in holds and what it was asked; tests read and change it directly."""

    token: str
    subscriptions: set[str]
    page_size: int = 2
    lro_polls: int = 2  # `InProgress` answers before `Succeeded`
    lro_retry_after: str | None = "1"
    connectors: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    configurations: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, int] = field(default_factory=dict)
    organizations: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    onboarding: dict[str, str] = field(default_factory=dict)
    plans: dict[tuple[str, str], str] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    throttle: int = 0  # answer this many next requests with 429
    authorization_codes: list[str] = field(default_factory=list)
    truncate: bool = False  # cut Resource Graph answers short, without a $skipToken
    retry_after: str = "1"
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, pattern: str) -> list[str]:
        return [p for m, p in self.requests if m == method and re.search(pattern, p)]


class Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def arm_error(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers)


# ---------------------------------------------------------------- the handler


class Handler(BaseHTTPRequestHandler):
    arm: Arm
    base: str
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.arm.lock:
            self.arm.requests.append((method, self.path))
        try:
            self._check(url.path, query)
            status, answer, headers = route(self.arm, self.base, method, url.path, query, body)
        except Reply as reply:
            status, answer, headers = reply.status, reply.body, reply.headers
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _check(self, path: str, query: dict[str, str]) -> None:
        arm = self.arm
        if "api-version" not in query:
            raise arm_error(400, "MissingApiVersionParameter", "The api-version is required.")
        if self.headers.get("Authorization") != f"Bearer {arm.token}":
            raise Reply(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationTokenTenant",
                        "message": "The access token is from the wrong issuer.",
                    }
                },
                {
                    "WWW-Authenticate": (
                        f'Bearer authorization_uri="https://login.windows.net/{TENANT}", '
                        'error="invalid_token", error_description="The access token is '
                        "from the wrong issuer. It must match the tenant associated with "
                        'this subscription."'
                    )
                },
            )
        with arm.lock:
            if arm.throttle > 0:
                arm.throttle -= 1
                raise arm_error(
                    429,
                    "TooManyRequests",
                    "Rate limit exceeded.",
                    **{"Retry-After": arm.retry_after},
                )
        match = re.match(r"^/subscriptions/([^/]+)", path)
        if match and match.group(1) not in arm.subscriptions:
            raise arm_error(
                403,
                "AuthorizationFailed",
                f"The client does not have authorization to perform action over "
                f"scope '/subscriptions/{match.group(1)}'.",
            )


def route(
    arm: Arm, base: str, method: str, path: str, query: dict[str, str], body: Any
) -> tuple[int, Any, dict[str, str]]:
    for pattern, handler in ROUTES:
        match = re.fullmatch(pattern, path)
        if match:
            return handler(arm, base, method, match.groupdict(), query, body)  # type: ignore[no-any-return]
    raise arm_error(404, "NotFound", f"no route {method} {path}")


def _connector(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    key = (g["sub"], g["rg"], g["name"])
    rid = (
        f"/subscriptions/{g['sub']}/resourceGroups/{g['rg']}"
        f"/providers/Microsoft.Security/securityConnectors/{g['name']}"
    )
    if method == "GET":
        if key not in arm.connectors:
            raise arm_error(404, "ResourceNotFound", f"The Resource '{rid}' was not found.")
        return 200, arm.connectors[key], {}
    if q["api-version"] != "2023-10-01-preview":
        raise arm_error(400, "InvalidApiVersionParameter", "unsupported api-version")
    props = body["properties"]
    if props.get("environmentName") != "AzureDevOps" or not props.get("hierarchyIdentifier"):
        raise arm_error(400, "InvalidRequestContent", "environmentName/hierarchyIdentifier")
    created = key not in arm.connectors
    arm.connectors[key] = {
        "id": rid,
        "name": g["name"],
        "type": "Microsoft.Security/securityConnectors",
        "location": body["location"],
        "properties": props,
    }
    return (201 if created else 200), arm.connectors[key], {}


def _configuration(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    key = (g["sub"], g["rg"], g["name"])
    if key not in arm.connectors:
        raise arm_error(404, "ResourceNotFound", "no such security connector")
    if method == "GET":
        if key not in arm.configurations:
            raise arm_error(404, "ResourceNotFound", "no DevOps configuration")
        return 200, arm.configurations[key], {}
    props = dict(body["properties"])
    if props.get("autoDiscovery") not in ("Enabled", "Disabled"):
        raise arm_error(400, "InvalidRequestContent", "autoDiscovery")
    if props["autoDiscovery"] == "Disabled" and not props.get("topLevelInventoryList"):
        raise arm_error(400, "InvalidRequestContent", "topLevelInventoryList is required")
    code = (props.pop("authorization", None) or {}).get("code")  # write-only
    if code:
        arm.authorization_codes.append(code)
    operation = str(uuid.uuid4())
    arm.operations[operation] = arm.lro_polls
    arm.configurations[key] = {
        "id": arm.connectors[key]["id"] + "/devops/default",
        "name": "default",
        "type": "Microsoft.Security/securityConnectors/devops",
        "properties": {**props, "provisioningState": "Succeeded"},
    }
    location = arm.connectors[key]["location"]
    status_url = (
        f"{base}/subscriptions/{g['sub']}/providers/Microsoft.Security/locations/"
        f"{location}/operationResults/{operation}?api-version=2024-04-01"
    )
    headers = {"Azure-AsyncOperation": status_url}
    if arm.lro_retry_after is not None:
        headers["Retry-After"] = arm.lro_retry_after
    pending = {**arm.configurations[key], "properties": {**props, "provisioningState": "Pending"}}
    return 201, pending, headers


def _operation(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    left = arm.operations.get(g["op"])
    if left is None:
        raise arm_error(404, "NotFound", "no such operation")
    if left > 0:
        arm.operations[g["op"]] = left - 1
        headers = {"Retry-After": arm.lro_retry_after} if arm.lro_retry_after else {}
        return 200, {"id": g["op"], "status": "InProgress"}, headers
    return 200, {"id": g["op"], "status": "Succeeded"}, {}


def _paged(base: str, path: str, query: dict[str, str], items: list[Any], size: int) -> Any:
    start = int(query.get("$skipToken", "0"))
    page = {"value": items[start : start + size]}
    if start + size < len(items):
        next_query = urlencode({"api-version": query["api-version"], "$skipToken": start + size})
        page["nextLink"] = f"{base}{path}?{next_query}"
    return page


def _inventory_item(kind: str, name: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.Security/{kind}",
        "properties": {"onboardingState": state, "provisioningState": "Succeeded", **extra},
    }


def _orgs(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    if (g["sub"], g["rg"], g["name"]) not in arm.connectors:
        raise arm_error(404, "ResourceNotFound", "no such security connector")
    items = [
        _inventory_item("azureDevOpsOrgs", org, arm.onboarding.get(org, "Onboarded"))
        for org in arm.organizations
    ]
    return 200, _paged(base, g["path"], q, items, arm.page_size), {}


def _projects(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    projects = arm.organizations.get(g["org"])
    if projects is None:
        raise arm_error(404, "ResourceNotFound", "no such organization")
    items = [_inventory_item("projects", p, "Onboarded", parentOrgName=g["org"]) for p in projects]
    return 200, _paged(base, g["path"], q, items, arm.page_size), {}


def _repos(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    repos = arm.organizations.get(g["org"], {}).get(g["project"])
    if repos is None:
        raise arm_error(404, "ResourceNotFound", "no such project")
    items = [
        _inventory_item(
            "repos",
            r,
            "Onboarded",
            parentOrgName=g["org"],
            parentProjectName=g["project"],
            repoUrl=f"https://dev.azure.com/{g['org']}/{g['project']}/_git/{r}",
        )
        for r in repos
    ]
    return 200, _paged(base, g["path"], q, items, arm.page_size), {}


def _pricing(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    tier = arm.plans.get((g["sub"], g["plan"]), "Free")
    return (
        200,
        {
            "id": f"/subscriptions/{g['sub']}/providers/Microsoft.Security/pricings/{g['plan']}",
            "name": g["plan"],
            "type": "Microsoft.Security/pricings",
            "properties": {"pricingTier": tier},
        },
        {},
    )


# ---------------------------------------------------------------- Resource Graph

_KEY = re.compile(r'assessmentKey\s*==\s*"([0-9a-f-]{36})"')
_PROJECT = re.compile(r"\|\s*project\s+(.+)$", re.S)


def _graph(arm: Arm, base: str, method: str, g: dict[str, str], q: Any, body: Any) -> Any:
    query = body.get("query", "")
    subscriptions = body.get("subscriptions") or sorted(arm.subscriptions)
    denied = [s for s in subscriptions if s not in arm.subscriptions]
    if denied:
        raise arm_error(403, "AuthorizationFailed", f"no access to subscription {denied[0]}")
    if (
        "securityresources" not in query
        or "microsoft.security/assessments/subassessments" not in query
    ):
        raise arm_error(400, "BadRequest", "the stand-in serves sub-assessment queries only")
    key = _KEY.search(query)
    rows = [
        r
        for r in arm.findings
        if r["subscriptionId"] in subscriptions
        and (key is None or f"/assessments/{key.group(1)}/" in r["id"])
    ]
    options = body.get("options") or {}
    start = int(options.get("$skipToken") or 0)
    size = min(int(options.get("$top") or 100), arm.page_size * 2)
    page = [_project(r, query) for r in rows[start : start + size]]
    answer: dict[str, Any] = {
        "totalRecords": len(rows),
        "count": len(page),
        "resultTruncated": "false",
        "data": page,
    }
    if start + size < len(rows) and arm.truncate:
        answer["resultTruncated"] = "true"  # what Resource Graph says when it cannot page on
    elif start + size < len(rows):
        answer["$skipToken"] = str(start + size)
    return (
        200,
        answer,
        {"x-ms-user-quota-remaining": "14", "x-ms-user-quota-resets-after": "00:00:05"},
    )


def _project(row: dict[str, Any], query: str) -> dict[str, Any]:
    """KQL's `project name = a.b.c, column`: dotted paths into the row, null when absent."""
    match = _PROJECT.search(query)
    if not match:
        return row
    out: dict[str, Any] = {}
    for column in match.group(1).split(","):
        name, _, path = (p.strip() for p in column.partition("="))
        value: Any = row
        for step in (path or name).split("."):
            value = value.get(step) if isinstance(value, dict) else None
        out[name] = value
    return out


ROUTES: list[tuple[str, Any]] = [
    (CONNECTOR, _connector),
    (CONNECTOR + r"/devops/default", _configuration),
    (r"(?P<path>" + CONNECTOR + r"/devops/default/azureDevOpsOrgs)", _orgs),
    (
        r"(?P<path>" + CONNECTOR + r"/devops/default/azureDevOpsOrgs/(?P<org>[^/]+)/projects)",
        _projects,
    ),
    (
        r"(?P<path>" + CONNECTOR + r"/devops/default/azureDevOpsOrgs/(?P<org>[^/]+)/projects/"
        r"(?P<project>[^/]+)/repos)",
        _repos,
    ),
    (
        r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Security/locations/[^/]+/"
        r"operationResults/(?P<op>[^/]+)",
        _operation,
    ),
    (
        r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Security/pricings/(?P<plan>[^/]+)",
        _pricing,
    ),
    (r"/providers/Microsoft\.ResourceGraph/resources", _graph),
]


# ---------------------------------------------------------------- rows as Defender writes them

REGISTRY_KEY = "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5"
RUNTIME_KEY = "c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5"


def registry_id(sub: str, rg: str, name: str) -> str:
    return f"{_group(sub, rg)}/providers/Microsoft.ContainerRegistry/registries/{name}"


def cluster_id(sub: str, rg: str, name: str) -> str:
    return f"{_group(sub, rg)}/providers/Microsoft.ContainerService/managedClusters/{name}"


def _group(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def finding(
    resource: str,
    key: str,
    cve: str,
    severity: str,
    *,
    registry: str,
    repository: str,
    digest: str,
    tags: list[str],
    code: str = "Unhealthy",
    pushed: str = "2026-11-27T10:15:32.8223098Z",
) -> dict[str, Any]:
    """One sub-assessment row in the documented shape (subassessment-rest-api)."""
    sub = resource.split("/")[2]
    assessed = (
        "AzureContainerRegistryVulnerability"
        if key == REGISTRY_KEY
        else "AzureContainerVulnerability"
    )
    return {
        "id": f"{resource}/providers/Microsoft.Security/assessments/{key}"
        f"/subassessments/{uuid.uuid4()}",
        "name": str(uuid.uuid4()),
        "type": "microsoft.security/assessments/subassessments",
        "tenantId": TENANT,
        "subscriptionId": sub,
        "properties": {
            "id": cve,
            "displayName": cve,
            "additionalData": {
                "assessedResourceType": assessed,
                "vulnerabilityDetails": {"severity": severity, "cveId": cve},
                "artifactDetails": {
                    "lastPushedToRegistryUTC": pushed,
                    "repositoryName": repository,
                    "registryHost": registry,
                    "artifactType": "ContainerImage",
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": digest,
                    "tags": tags,
                },
            },
            "resourceDetails": {
                "id": f"/repositories/{repository}/images/{digest}",
                "source": "Azure",
            },
            "timeGenerated": "2026-11-27T12:00:00Z",
            "status": {"severity": severity, "code": code},
        },
    }


# ---------------------------------------------------------------- serving


class StandIn:
    def __init__(self, arm: Arm, tls: Tls) -> None:
        self.arm = arm
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.server.RequestHandlerClass = type(
            "BoundHandler", (Handler,), {"arm": arm, "base": self.url}
        )
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
