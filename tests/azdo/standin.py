"""A local Azure DevOps stand-in: the routes the `azure-devops` SDK calls while onboarding.

It advertises every route the way the service does (`OPTIONS {host}/_apis` lists locations by
id with their route templates and versions; `GET {host}/_apis/ResourceAreas` says which host
serves which area) and then routes requests by those same templates, so the SDK's own
discovery and URL formatting decide what is called. Hosts are paths on one loopback port:
`/app` (profile, accounts), `/{org}` (connection data, projects, repositories, settings, the
portal's policy page), `/vssps/{org}` (graph), `/vsaex/{org}` (entitlements), `/extmgmt/{org}`
(installed extensions) and `/gallery` (sharing). Requests need the PAT (Basic), API requests
need an api-version in `Accept`; every request is logged for the tests to inspect.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers import reply, running

USER_ID = "5b9a5bd2-0b7b-4d5c-9a43-1c0a4d0e7f11"
USER_DESCRIPTOR = "aad.NWI5YTViZDItb3BlcmF0b3I"
PCA, OPS, VALID = "vssgp.pca", "vssgp.ops", "vssgp.valid"

# (id, area, resourceName, routeTemplate, resourceVersion, maxVersion)
LOCATIONS = {
    "resource_areas": (
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        1,
        7.1,
    ),
    "connection_data": (
        "00d9565f-ed9c-4a06-9a50-00e7896ccab4",
        "Location",
        "ConnectionData",
        "_apis/{resource}",
        1,
        7.1,
    ),
    "profile": (
        "f83735dc-483f-4238-a291-d45f6080a9af",
        "Profile",
        "Profiles",
        "_apis/{area}/{resource}/{id}",
        3,
        7.1,
    ),
    "accounts": (
        "229a6a53-b428-4ffb-a835-e8f36b5b4b1e",
        "Account",
        "Accounts",
        "_apis/{resource}",
        1,
        7.1,
    ),
    "projects": (
        "603fe2ac-9723-48b9-88ad-09305aa6c6e1",
        "core",
        "projects",
        "_apis/{resource}/{*projectId}",
        4,
        7.1,
    ),
    "repositories": (
        "225f7195-f9c7-4d14-ab28-a83f7ff77e1f",
        "git",
        "repositories",
        "{project}/_apis/{area}/{resource}/{repositoryId}",
        1,
        7.1,
    ),
    "settings": (
        "cd006711-163d-4cd4-a597-b05bad2556ff",
        "Settings",
        "Entries",
        "_apis/Settings/{userScope}/{*key}",
        1,
        7.1,
    ),
    "groups": (
        "ebbe6af8-0b91-4c13-8cf1-777c14858188",
        "Graph",
        "Groups",
        "_apis/{area}/{resource}/{groupDescriptor}",
        1,
        7.1,
    ),
    "memberships": (
        "e34b6394-6b30-4435-94a9-409a5eef3e31",
        "Graph",
        "Memberships",
        "_apis/{area}/{resource}/{subjectDescriptor}",
        1,
        7.1,
    ),
    "entitlement": (
        "8480c6eb-ce60-47e9-88df-eca3c801638b",
        "MemberEntitlementManagement",
        "UserEntitlements",
        "_apis/{resource}/{userId}",
        3,
        7.1,
    ),
    "sp_entitlement": (
        "1d491a66-190b-43ae-86b8-9c2688c55186",
        "MemberEntitlementManagement",
        "ServicePrincipalEntitlements",
        "_apis/{resource}/{servicePrincipalId}",
        1,
        7.1,
    ),
    "by_name": (
        "fb0da285-f23e-4b56-8b53-3ef5f9f6de66",
        "ExtensionManagement",
        "InstalledExtensionsByName",
        "_apis/{area}/{resource}/{publisherName}/{extensionName}/{version}",
        1,
        7.1,
    ),
    "installed": (
        "275424d0-c844-4fe2-bda6-04933a1357d8",
        "ExtensionManagement",
        "InstalledExtensions",
        "_apis/{area}/{resource}/{extensionId}",
        1,
        7.1,
    ),
    "share": (
        "a1e66d8f-f5de-4d16-8309-91a4e015ee46",
        "gallery",
        "accountsbyname",
        "_apis/{area}/publisher/{publisherName}/extension/{extensionName}/{resource}/{accountName}",
        1,
        7.1,
    ),
}
AREAS = {
    "core": "79134c72-4a58-4b42-976c-04e7115f32bf",
    "git": "4e080c62-fa21-4fbc-8fef-2a10a2b38049",
    "graph": "bb1e7ec9-e901-4b68-999a-de7012b920f8",
    "entitlements": "68ddce18-2501-45f1-a17b-7931a9922690",
    "extmgmt": "6c2b0933-3600-42ae-bf8b-93d4f7e83594",
    "gallery": "69d21c00-f135-441b-b5ce-3626378e0819",
    "profile": "8ccfef3d-2b87-4e99-8ccb-66e343d2daa8",
    "accounts": "0d55247a-1c47-4462-9b1f-5e2125590ee6",
}
HOST_LOCATIONS = {
    "app": ("resource_areas", "profile", "accounts"),
    "org": ("resource_areas", "connection_data", "projects", "repositories", "settings"),
    "vssps": ("resource_areas", "groups", "memberships"),
    "vsaex": ("resource_areas", "entitlement", "sp_entitlement"),
    "extmgmt": ("resource_areas", "by_name", "installed"),
    "gallery": ("resource_areas", "share"),
}


@dataclass
class Org:
    """One organization as the stand-in holds it."""

    name: str
    projects: int = 5
    repositories: int = 3
    admin: bool = True  # the caller is in Project Collection Administrators (through a group)
    license: str = "express"  # express = Basic; stakeholder; advanced = Basic + Test Plans
    oauth_disallowed: bool = False
    installed: dict[str, Any] | None = None  # {"version": "0.1.0", "flags": "none"}
    shared: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    fail: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # kind -> status, RA
    fail_once: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    service_principal: bool = False  # the caller is a service principal (a pipeline identity)
    delay: dict[str, float] = field(default_factory=dict)  # kind -> seconds before answering


@dataclass
class World:
    pat: str
    bearer: str | None = None  # an Entra access token accepted as well as the PAT
    publisher: str = "container-mapping"
    extension: str = "container-mapping"
    orgs: dict[str, Org] = field(default_factory=dict)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, accept
    lock: threading.Lock = field(default_factory=threading.Lock)
    everywhere: Org = field(default_factory=lambda: Org("(global hosts)"))  # /app's failures

    def add(self, org: Org) -> Org:
        self.orgs[org.name] = org
        return org

    def writes(self) -> list[tuple[str, str, str]]:
        return [entry for entry in self.log if entry[0] not in ("GET", "OPTIONS")]


def _pattern(host: str, template: str, area: str, resource: str) -> re.Pattern[str]:
    """The stand-in routes by the template it advertises; unnamed parameters are optional."""
    regex = "^" + re.escape(host)
    for segment in template.split("/"):
        if segment in ("{area}", "{resource}"):
            regex += "/" + re.escape(area if segment == "{area}" else resource)
        elif segment.startswith("{"):
            name = segment.strip("{}*")
            regex += f"(?:/(?P<{name}>[^/]+))?"
        else:
            regex += "/" + re.escape(segment)
    return re.compile(regex + "/?$", re.IGNORECASE)


class Handler(BaseHTTPRequestHandler):
    world: World
    base: str
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        accept = self.headers.get("Accept", "")
        with self.world.lock:
            self.world.log.append((method, path, accept))
        expected = base64.b64encode(f":{self.world.pat}".encode()).decode()
        accepted = {f"Basic {expected}"} | (
            {f"Bearer {self.world.bearer}"} if self.world.bearer else set()
        )
        if self.headers.get("Authorization") not in accepted:
            return reply(self, 401, b"")  # as the service: empty body, no WWW-Authenticate page
        try:
            status, answer, headers = self._route(method, path, query, accept, body)
        except LookupError as err:
            status, answer, headers = 404, _wrapped(str(err), "NotFoundException"), {}
        data = b"" if answer is None else json.dumps(answer).encode()
        try:
            self._send(status, headers, data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, path: str, query: Any, accept: str, body: Any) -> Any:
        host, org, prefix = _host_of(path, self.world)
        if path.rstrip("/").lower().endswith("/_settings/organizationpolicy") and org:
            return 200, _policy_page(org), {}
        if method == "OPTIONS" and path.rstrip("/").lower().endswith("/_apis"):
            return 200, _locations(HOST_LOCATIONS[host]), {}
        if "api-version=" not in accept:
            return 400, _wrapped("No api-version was supplied", "VssVersionNotSpecified"), {}
        for kind in HOST_LOCATIONS[host]:
            _, area, resource, template, _, _ = LOCATIONS[kind]
            match = _pattern(prefix, template, area, resource).match(path)
            if match:
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                if host == "gallery":  # the gallery is global; its route names the organization
                    org = self.world.orgs.get(str(groups.get("accountName", "")).lower())
                if org is not None and kind in org.delay:
                    time.sleep(org.delay[kind])
                failure = _failure(org or self.world.everywhere, kind, method)
                if failure:
                    code, wait = failure
                    extra = {"Retry-After": str(wait)} if wait is not None else {}
                    return code, _wrapped("refused by the stand-in", "Injected"), extra
                return ROUTES[kind](self, method, org, groups, query, body)
        raise LookupError(f"no route for {method} {path}")

    def areas(self, host: str, org: Org | None) -> list[dict[str, str]]:
        name = org.name if org else ""
        urls = {
            "core": f"{self.base}/{name}",
            "git": f"{self.base}/{name}",
            "graph": f"{self.base}/vssps/{name}",
            "entitlements": f"{self.base}/vsaex/{name}",
            "extmgmt": f"{self.base}/extmgmt/{name}",
            "gallery": f"{self.base}/gallery",
            "profile": f"{self.base}/app",
            "accounts": f"{self.base}/app",
        }
        return [{"id": AREAS[k], "name": k, "locationUrl": v} for k, v in urls.items()]


def _host_of(path: str, world: World) -> tuple[str, Org | None, str]:
    """Which host a path is on, its organization, and the host's base path."""
    first, _, rest = path.strip("/").partition("/")
    first = first.lower()
    if first in ("app", "gallery"):
        return first, None, f"/{first}"
    if first in ("vssps", "vsaex", "extmgmt"):
        name = rest.split("/", 1)[0].lower()
        if name not in world.orgs:
            raise LookupError(f"organization {name} not found")
        return first, world.orgs[name], f"/{first}/{name}"
    if first not in world.orgs:
        raise LookupError(f"organization {first} not found")
    return "org", world.orgs[first], f"/{first}"


def _failure(org: Org | None, kind: str, method: str) -> tuple[int, int | None] | None:
    """An injected answer for this route (`projects`) or route and method (`by_name_post`)."""
    if org is None:
        return None
    for key in (f"{kind}_{method.lower()}", kind):
        if key in org.fail_once:
            return org.fail_once.pop(key)
        if key in org.fail:
            return org.fail[key]
    return None


def _locations(kinds: tuple[str, ...]) -> dict[str, Any]:
    value = []
    for kind in kinds:
        id_, area, resource, template, resource_version, max_version = LOCATIONS[kind]
        value.append(
            {
                "id": id_,
                "area": area,
                "resourceName": resource,
                "routeTemplate": template,
                "resourceVersion": resource_version,
                "minVersion": "1.0",
                "maxVersion": str(max_version),
                "releasedVersion": "7.0",
            }
        )
    return {"count": len(value), "value": value}


def _wrapped(message: str, type_key: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"Microsoft.VisualStudio.Services.{type_key}, Microsoft.VisualStudio.Services",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }


def _collection(items: list[Any]) -> dict[str, Any]:
    return {"count": len(items), "value": items}


def _policy_page(org: Org) -> dict[str, Any]:
    policy = {
        "name": "Policy.DisallowOAuthAuthentication",
        "value": org.oauth_disallowed,
        "effectiveValue": org.oauth_disallowed,
        "isValueUndefined": False,
    }
    provider = {"policies": {"applicationConnection": [{"policy": policy}], "security": []}}
    return {
        "fps": {
            "dataProviders": {
                "data": {"ms.vss-admin-web.organization-policies-data-provider": provider}
            }
        }
    }


def _resource_areas(h: Handler, method: str, org: Org | None, g: Any, q: Any, body: Any) -> Any:
    return 200, _collection(h.areas("", org)), {}


def _connection_data(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    user = {
        "id": USER_ID,
        "subjectDescriptor": USER_DESCRIPTOR,
        "providerDisplayName": "Operator",
        "isActive": True,
    }
    return (
        200,
        {
            "authenticatedUser": user,
            "authorizedUser": user,
            "instanceId": "00000000-0000-0000-0000-0000000000aa",
        },
        {},
    )


def _profile(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    if g.get("id") != "me":
        raise LookupError("profile not found")
    return 200, {"id": USER_ID, "displayName": "Operator", "coreRevision": 1}, {}


def _accounts(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    if q.get("memberId") != [USER_ID]:
        return 400, _wrapped("memberId or ownerId is required", "ArgumentException"), {}
    accounts = [
        {
            "accountId": f"00000000-0000-0000-0000-{i:012d}",
            "accountName": name,
            "accountUri": f"{h.base}/{name}/",
        }
        for i, name in enumerate(h.world.orgs)
    ]
    return 200, _collection(accounts), {}


PAGE_CAP = 2  # the service may answer fewer than $top; the client must page on


def _projects(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    skip = int(q.get("$skip", ["0"])[0])
    top = min(int(q.get("$top", ["100"])[0]), PAGE_CAP)
    items = [
        {"id": f"p{i}", "name": f"project-{i}", "state": "wellFormed"} for i in range(org.projects)
    ][skip : skip + top]
    headers = {"X-MS-ContinuationToken": str(skip + top)} if skip + top < org.projects else {}
    return 200, _collection(items), headers


def _repositories(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    items = [{"id": f"r{i}", "name": f"repo-{i}"} for i in range(org.repositories)]
    return 200, _collection(items), {}


def _settings(h: Handler, method: str, org: Org | None, g: Any, q: Any, body: Any) -> Any:
    assert org is not None
    if g.get("userScope") != "host":
        return 400, _wrapped("only host scope in the stand-in", "ArgumentException"), {}
    key = g.get("key")
    if method == "GET":
        found = {k: v for k, v in org.settings.items() if key is None or k == key}
        return 200, {"count": len(found), "value": found}, {}
    if method == "PATCH":
        org.settings.update(body or {})
        return 204, None, {}
    if method == "DELETE":
        org.settings.pop(key or "", None)
        return 204, None, {}
    return 405, None, {}


_GROUPS = [
    (VALID, "Project Collection Valid Users"),
    ("vssgp.readers", "Project Collection Readers"),
    (OPS, "Platform Ops"),
    (PCA, "Project Collection Administrators"),
    ("vssgp.build", "Project Collection Build Administrators"),
]


def _groups(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    start = int(q.get("continuationToken", ["0"])[0])
    page = [
        {
            "descriptor": d,
            "displayName": n,
            "principalName": f"[{org.name}]\\{n}",
            "subjectKind": "group",
        }
        for d, n in _GROUPS
    ][start : start + 2]
    more = start + 2 < len(_GROUPS)
    return 200, _collection(page), {"X-MS-ContinuationToken": str(start + 2)} if more else {}


def _memberships(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    if q.get("direction") != ["up"] or q.get("depth") != ["1"]:
        return 400, _wrapped("direction=up&depth=1 only", "ArgumentException"), {}
    edges = {USER_DESCRIPTOR: [VALID] + ([OPS] if org.admin else []), OPS: [PCA]}
    subject = g.get("subjectDescriptor", "")
    items = [
        {"containerDescriptor": c, "memberDescriptor": subject} for c in edges.get(subject, [])
    ]
    return 200, _collection(items), {}


def _entitlement(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    if g.get("userId") != USER_ID or org.service_principal:
        return 404, _wrapped("user not found", "UserEntitlementNotFoundException"), {}
    return 200, {"id": USER_ID, "accessLevel": _level(org)}, {}


def _sp_entitlement(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    if g.get("servicePrincipalId") != USER_ID or not org.service_principal:
        return 404, _wrapped("service principal not found", "NotFoundException"), {}
    return 200, {"id": USER_ID, "accessLevel": _level(org)}, {}


def _level(org: Org) -> dict[str, str]:
    shown = {"express": "Basic", "advanced": "Basic + Test Plans", "stakeholder": "Stakeholder"}
    return {"accountLicenseType": org.license, "licenseDisplayName": shown[org.license]}


def _extension_json(world: World, installed: dict[str, Any]) -> dict[str, Any]:
    return {
        "extensionId": world.extension,
        "extensionName": "Container Mapping",
        "publisherId": world.publisher,
        "publisherName": world.publisher,
        "version": installed["version"],
        "installState": {"flags": installed["flags"], "lastUpdated": "2026-01-01T00:00:00Z"},
    }


def _by_name(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    assert org is not None
    world = h.world
    if (g.get("publisherName"), g.get("extensionName")) != (world.publisher, world.extension):
        raise LookupError("extension does not exist")
    if method == "GET":
        if org.installed is None:
            return 404, _wrapped("not installed", "InstalledExtensionNotFoundException"), {}
        return 200, _extension_json(world, org.installed), {}
    if method == "POST":
        if not org.shared:
            return (
                403,
                _wrapped(
                    "extension is not shared with this organization", "ExtensionNotSharedException"
                ),
                {},
            )
        if org.installed is not None:
            return 409, _wrapped("already installed", "ExtensionAlreadyInstalledException"), {}
        org.installed = {"version": g.get("version", "9.9.9"), "flags": "none"}
        return 200, _extension_json(world, org.installed), {}
    if method == "DELETE":
        if org.installed is None:
            return 404, _wrapped("not installed", "InstalledExtensionNotFoundException"), {}
        org.installed = None
        return 204, None, {}
    return 405, None, {}


def _installed(h: Handler, method: str, org: Org | None, g: Any, q: Any, body: Any) -> Any:
    assert org is not None
    if method != "PATCH" or org.installed is None or not isinstance(body, dict):
        return 400, _wrapped("PATCH an installed extension", "ArgumentException"), {}
    org.installed = {
        "version": body.get("version") or org.installed["version"],
        "flags": (body.get("installState") or {}).get("flags", "none"),
    }
    return 200, _extension_json(h.world, org.installed), {}


def _share(h: Handler, method: str, org: Org | None, g: Any, q: Any, b: Any) -> Any:
    target = h.world.orgs.get(str(g.get("accountName", "")).lower())
    if target is None:
        raise LookupError("account not found")
    if method == "DELETE" and not target.shared:
        return 404, _wrapped("not shared", "ExtensionNotSharedException"), {}
    target.shared = method == "POST"
    return 204, None, {}


ROUTES = {
    "resource_areas": _resource_areas,
    "connection_data": _connection_data,
    "profile": _profile,
    "accounts": _accounts,
    "projects": _projects,
    "repositories": _repositories,
    "settings": _settings,
    "groups": _groups,
    "memberships": _memberships,
    "entitlement": _entitlement,
    "sp_entitlement": _sp_entitlement,
    "by_name": _by_name,
    "installed": _installed,
    "share": _share,
}


@contextmanager
def standin(world: World) -> Iterator[str]:
    """Serve `world` on a free loopback port; yields the base URL."""
    handler: type[Handler] = type("StandinHandler", (Handler,), {"world": world, "base": ""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    handler.base = f"http://127.0.0.1:{server.server_address[1]}"
    with running(server):
        yield handler.base
