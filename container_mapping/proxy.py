"""Which proxy a request goes through, with the agent's own settings first.

Corporate agents are configured with a proxy (`config.sh --proxyurl --proxyusername
--proxypassword`, a `.proxybypass` file, or `VSTS_HTTP_PROXY*` / `no_proxy` in the agent's
environment). The agent hands it to every task as job variables (azure-pipelines-agent,
`src/Agent.Worker/ExecutionContext.cs`, "Proxy variables"):
- `Agent.ProxyUrl`: the proxy's absolute URL (environment `AGENT_PROXYURL`);
- `Agent.ProxyUsername` (`AGENT_PROXYUSERNAME`) and `Agent.ProxyPassword`, a secret variable, so
  it arrives as `SECRET_AGENT_PROXYPASSWORD` (`Handler.cs`, `AddVariablesToEnvironment`);
- `Agent.ProxyBypassList`: a JSON array of regular expressions (ECMAScript syntax, matched
  case-insensitively), from `.proxybypass` and from `no_proxy` with its dots escaped
  (`VstsAgentWebProxy.cs`, `LoadProxyBypassList`).
azure-pipelines-task-lib reads the same names in `getHttpProxyConfiguration` (`node/task.ts`),
tests each expression against the whole request URL, and tasks built on it send the user name
and password as Basic credentials to the proxy, which is what this module does. The agent's own
HTTP client tests the expressions against `scheme://host[:port]` and never proxies loopback;
both readings bypass here, so a list written for either works.

Without `Agent.ProxyUrl`, the conventional `https_proxy` / `http_proxy` / `no_proxy` apply, as
curl reads them, but only when the agent's host set them: a pipeline variable of the same name,
which any earlier step can set, would route the job's token through that step's own server
(see `tls.host_setting`).

Credentials go only into `Proxy-Authorization` (in the CONNECT of a tunnel, or on a plain-HTTP
request sent to the proxy); no user-info of any URL reaches a request line, a `Host` header or
a message, and the password is among `ProxySettings.secrets`, which the task masks first.

Not supported: proxies that accept only NTLM or Negotiate (the agent's own .NET client can
negotiate those unless `Agent.UseBasicAuthForProxy` is set; a standard-library client cannot),
and https:// proxy URLs (TLS to the proxy itself): both end in one clear error.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from container_mapping.errors import ConfigError
from container_mapping.tls import agent_variable, host_setting


class ProxyError(ConfigError):
    """A proxy setting that cannot be used."""


@dataclass(frozen=True)
class Proxy:
    """One proxy server; `authorization` is the `Proxy-Authorization` value, if any."""

    host: str
    port: int
    authorization: str = field(default="", repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}

    @property
    def address(self) -> str:
        """`host:port`, fit for a message."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProxySettings:
    """The proxies for https:// and http:// URLs and what bypasses them."""

    https: Proxy | None = None
    http: Proxy | None = None
    bypass: tuple[str, ...] = ()  # the agent's regular expressions
    no_proxy: tuple[str, ...] = ()  # conventional no_proxy entries, lower case
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ProxySettings:
        """The agent's proxy if it has one, else the host's `https_proxy`/`http_proxy`."""
        url = agent_variable(environ, "Agent.ProxyUrl")
        if url:
            proxy, secrets = parse_proxy(
                url,
                agent_variable(environ, "Agent.ProxyUsername"),
                agent_variable(environ, "Agent.ProxyPassword", secret=True),
            )
            bypass = _bypass_list(agent_variable(environ, "Agent.ProxyBypassList"))
            return cls(https=proxy, http=proxy, bypass=bypass, secrets=secrets)
        https, https_secrets = _from_host(environ, "https_proxy")
        http, http_secrets = _from_host(environ, "http_proxy")
        no_proxy = _host_value(environ, "no_proxy")
        entries = tuple(e.strip().lower() for e in no_proxy.split(",") if e.strip())
        return cls(https, http, (), entries, (*https_secrets, *http_secrets))

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for `url`, or None to connect directly."""
        parts = urllib.parse.urlsplit(url)
        proxy = self.https if parts.scheme == "https" else self.http
        host = (parts.hostname or "").lower()
        if proxy is None or is_loopback(host):
            return None
        if self.bypass and _matches(self.bypass, parts):
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self.no_proxy and _no_proxy_matches(self.no_proxy, host, port):
            return None
        return proxy


def secrets_to_mask(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Every proxy and client-certificate secret the environment holds; never raises.

    The task masks these (`AgentLog.set_secret`) before it prints anything, including when a
    setting turns out to be unusable.
    """
    from container_mapping.tls import TlsSettings

    found = [agent_variable(environ, "Agent.ProxyPassword", secret=True)]
    found.extend(TlsSettings.from_environment(environ).secrets)
    for name in ("Agent.ProxyUrl", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        value = agent_variable(environ, name) if name.startswith("Agent.") else environ.get(name)
        try:
            found.extend(parse_proxy(value)[1] if value else ())
        except ProxyError:
            found.append(_password_in(value or ""))
    return tuple(dict.fromkeys(s for s in found if s.strip()))


def _password_in(url: str) -> str:
    """The password of a URL's user-info, read as loosely as possible."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    userinfo = netloc.rpartition("@")[0]
    return urllib.parse.unquote(userinfo.partition(":")[2]) if userinfo else ""


def parse_proxy(url: str, username: str = "", password: str = "") -> tuple[Proxy, tuple[str, ...]]:
    """A proxy URL (`http://host:port`, or just `host:port`) and its credentials.

    User-info in the URL is used when no user name is given apart. Returns the proxy and the
    values to mask.
    """
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port or 80
    except ValueError:
        raise ProxyError("the proxy URL is not a URL: give http://host:port") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname or ''}"
        raise ProxyError(f"proxy {shown}: only http:// proxies are supported")
    if not username and parts.username:
        username = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
    secrets: tuple[str, ...] = ()
    authorization = ""
    if username:
        import base64  # only with credentials: the common agent has none

        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        authorization = f"Basic {credentials}"
        secrets = tuple(s for s in (password, credentials) if s)
    return Proxy(parts.hostname, port, authorization), secrets


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "::1") or host.endswith(".localhost"):
        return True
    octets = host.split(".")
    return len(octets) == 4 and octets[0] == "127" and all(o.isdigit() for o in octets)


def _from_host(environ: Mapping[str, str], name: str) -> tuple[Proxy | None, tuple[str, ...]]:
    value = _host_value(environ, name)
    if not value:
        return None, ()
    return parse_proxy(value)


def _host_value(environ: Mapping[str, str], name: str) -> str:
    return host_setting(environ, name) or host_setting(environ, name.upper())


def _bypass_list(text: str) -> tuple[str, ...]:
    """The agent's JSON array; unreadable text bypasses nothing (the agent writes it)."""
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(str(item).strip() for item in items if str(item).strip())


def _matches(patterns: tuple[str, ...], parts: urllib.parse.SplitResult) -> bool:
    """task-lib's reading (the whole URL) or the agent's (`scheme://host[:port]`)."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    whole = urllib.parse.urlunsplit((parts.scheme, origin.split("://", 1)[1], *parts[2:]))
    for pattern in patterns:
        try:
            if re.search(pattern, origin, re.IGNORECASE) or re.search(
                pattern, whole, re.IGNORECASE
            ):
                return True
        except re.error:
            continue  # the agent skips expressions it cannot compile, too
    return False


def _no_proxy_matches(entries: tuple[str, ...], host: str, port: int) -> bool:
    for entry in entries:
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        name = name.lstrip("*").lstrip(".").strip("[]")
        if name and (host == name or host.endswith(f".{name}")):
            return True
    return False
