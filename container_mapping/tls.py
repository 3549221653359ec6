"""One TLS context per process, built cheaply, trusting what the agent's host trusts.

Why a module of its own: `ssl.create_default_context()` reads the whole CA bundle (about 140
certificates, 23-50 ms here), and building one per connection cost post-job that twice per run
(token route, then the sink). OpenSSL's hashed certificate directory (`c_rehash` links named
`<subject hash>.0`) is looked up lazily, one issuer at a time, so registering it costs well
under 1 ms. Where the platform has one (Debian, Ubuntu, Alpine: `/etc/ssl/certs`), that is all
we register; where it does not (RHEL's `/etc/pki/tls/certs` holds bundles only, macOS and
Windows builds), the bundle is read as `ssl` would read it, and on Windows the system stores
are loaded too. The context is built on first use and kept for the process.

What the agent gives a task (azure-pipelines-agent, `src/Agent.Worker/ExecutionContext.cs`,
the "Certificate variables"; names in `src/Microsoft.VisualStudio.Services.Agent/Constants.cs`):
- `Agent.CAInfo`: the CA certificate file given at configuration (`--sslcacert`, PEM), for a
  server or a TLS-inspecting proxy signed by a private CA. Added to the trust anchors.
- `Agent.ClientCert`, `Agent.ClientCertKey`, `Agent.ClientCertArchive`: set only when all three
  were configured (`--sslclientcert`, `--sslclientcertkey`, `--sslclientcertarchive`); the PEM
  certificate and key are loaded (the archive is the same pair as PKCS#12 for .NET, which the
  standard library cannot read, and does not need to).
- `Agent.ClientCertPassword`: the archive's and key's password, set as a secret variable.
- `Agent.SkipCertValidation`: `True` when the agent was configured to skip validation. Not
  honoured: this step sends the job's token, and an unverified TLS peer would receive it.
A task sees variable `A.B` as environment variable `A_B`, a secret one as `SECRET_A_B`
(`src/Agent.Worker/Handlers/Handler.cs`, `AddVariablesToEnvironment`); azure-pipelines-task-lib
reads the same names in `getHttpCertConfiguration` (`node/task.ts`).

`SSL_CERT_FILE` and `SSL_CERT_DIR` replace OpenSSL's default file and directory, as OpenSSL
itself does, but only when the agent's host set them: a variable of the same name set by an
earlier step (`##vso[task.setvariable variable=SSL_CERT_FILE]`) reaches this step's environment
too, and would let that step trust its own CA for the job's token. The agent lists every
pipeline variable's name in `VSTS_PUBLIC_VARIABLES` / `VSTS_SECRET_VARIABLES`
(`Handler.cs`); an environment variable named there is a pipeline variable, not the host's.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from container_mapping.errors import ConfigError

if TYPE_CHECKING:
    import ssl

HEX = frozenset("0123456789abcdef")
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"  # extended key usage of a Windows store certificate


class TlsError(ConfigError):
    """A certificate setting names a file that cannot be used."""


def variable_key(name: str) -> str:
    """The environment variable the agent gives a task for pipeline variable `name`."""
    return name.replace(".", "_").replace(" ", "_").upper()


def pipeline_variable_keys(environ: Mapping[str, str]) -> frozenset[str] | None:
    """The environment names that hold pipeline variables; None if the agent's list is garbled."""
    keys: set[str] = set()
    for listing in ("VSTS_PUBLIC_VARIABLES", "VSTS_SECRET_VARIABLES"):
        try:
            names = json.loads(environ.get(listing) or "[]")
        except ValueError:
            return None
        if not isinstance(names, list):
            return None
        keys.update(variable_key(str(name)) for name in names)
    return frozenset(keys)


def host_setting(environ: Mapping[str, str], name: str) -> str:
    """`environ[name]` if the agent's host set it, "" if a pipeline variable did (or nothing)."""
    value = environ.get(name, "").strip()
    if not value:
        return ""
    keys = pipeline_variable_keys(environ)
    return "" if keys is None or name.upper() in keys else value


def agent_variable(environ: Mapping[str, str], name: str, *, secret: bool = False) -> str:
    """An agent variable as the agent hands it to a task (secret ones under `SECRET_`)."""
    key = variable_key(name)
    if secret:
        return environ.get(f"SECRET_{key}", "") or environ.get(key, "")
    return environ.get(key, "").strip()


@dataclass(frozen=True)
class TlsSettings:
    """Where trust and the client certificate come from; empty strings mean "not set"."""

    ca_file: str = ""  # Agent.CAInfo
    client_cert: str = ""  # Agent.ClientCert
    client_key: str = ""  # Agent.ClientCertKey
    client_password: str = field(default="", repr=False)  # Agent.ClientCertPassword
    cert_file: str = ""  # SSL_CERT_FILE, from the host
    cert_dir: str = ""  # SSL_CERT_DIR, from the host

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TlsSettings:
        client_cert = agent_variable(environ, "Agent.ClientCert")
        return cls(
            ca_file=agent_variable(environ, "Agent.CAInfo"),
            client_cert=client_cert,
            client_key=agent_variable(environ, "Agent.ClientCertKey") if client_cert else "",
            client_password=(
                agent_variable(environ, "Agent.ClientCertPassword", secret=True)
                if client_cert
                else ""
            ),
            cert_file=host_setting(environ, "SSL_CERT_FILE"),
            cert_dir=host_setting(environ, "SSL_CERT_DIR"),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values the task must mask before printing anything."""
        return (self.client_password,) if self.client_password else ()


_lock = threading.Lock()
_contexts: dict[TlsSettings, ssl.SSLContext] = {}


def client_context(settings: TlsSettings | None = None) -> ssl.SSLContext:
    """The process's client context for `settings`, built on first use (thread-safe)."""
    settings = settings or TlsSettings()
    with _lock:
        context = _contexts.get(settings)
        if context is None:
            context = _contexts[settings] = build_context(settings)
        return context


def build_context(settings: TlsSettings) -> ssl.SSLContext:
    """A new verifying client context (callers want `client_context`; tests and bench this)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # An intermediate given as Agent.CAInfo is a trust anchor of its own, as in Python 3.13.
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)  # 0 before 3.10
    _load_trust(context, settings)
    if settings.ca_file:
        _load(context, "the agent's CA certificate file (Agent.CAInfo)", settings.ca_file)
    if settings.client_cert:
        try:
            context.load_cert_chain(
                settings.client_cert,
                settings.client_key or None,
                # "" rather than None: OpenSSL would otherwise prompt on a terminal.
                password=settings.client_password,
            )
        except (OSError, ssl.SSLError) as err:
            raise TlsError(
                f"the agent's client certificate (Agent.ClientCert {settings.client_cert}, "
                f"Agent.ClientCertKey {settings.client_key or 'in the same file'}) cannot be "
                f"used: {_reason(err)}"
            ) from None
    return context


def _load_trust(context: ssl.SSLContext, settings: TlsSettings) -> None:
    """OpenSSL's default file and directory (or the host's replacements), the cheap way."""
    import ssl

    defaults = ssl.get_default_verify_paths()
    cafile = settings.cert_file or defaults.openssl_cafile
    capath = settings.cert_dir or defaults.openssl_capath
    if sys.platform == "win32":
        _load_windows_stores(context)
    if settings.cert_file:
        _load(context, "SSL_CERT_FILE", cafile)
    elif not hashed_directory(capath) and os.path.isfile(cafile):
        # No hashed directory: read the bundle. With one, the default bundle holds the same
        # certificates (update-ca-certificates writes both), so it is skipped.
        _load(context, "the default CA bundle", cafile)
    if settings.cert_dir:
        _load(context, "SSL_CERT_DIR", capath, directory=True)
    elif os.path.isdir(capath):
        _load(context, "the default CA directory", capath, directory=True)


def hashed_directory(path: str) -> bool:
    """Whether `path` holds at least one OpenSSL subject-hash link (`1a2b3c4d.0`)."""
    try:
        with os.scandir(path) as entries:
            return any(_is_hash_name(entry.name) for entry in entries)
    except OSError:
        return False


def _is_hash_name(name: str) -> bool:
    return len(name) >= 10 and name[8] == "." and name[9:].isdigit() and set(name[:8]) <= HEX


def _load_windows_stores(context: ssl.SSLContext) -> None:
    """The Windows system stores' server-authentication anchors, as `load_default_certs` does."""
    import ssl

    if sys.platform == "win32":
        anchors = bytearray()
        for store in ("CA", "ROOT"):
            for cert, encoding, trust in ssl.enum_certificates(store):
                if encoding == "x509_asn" and (trust is True or SERVER_AUTH in trust):
                    anchors.extend(cert)
        if anchors:
            context.load_verify_locations(cadata=bytes(anchors))


def _load(context: ssl.SSLContext, what: str, path: str, *, directory: bool = False) -> None:
    import ssl

    try:
        if directory:
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as err:
        raise TlsError(f"{what} {path} cannot be used: {_reason(err)}") from None


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or getattr(err, "reason", None) or str(err)
