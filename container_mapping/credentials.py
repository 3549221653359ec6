"""Registry credentials as the Docker CLI finds them on an agent.

`docker login` (and the Docker@2 task) leave them in `$DOCKER_CONFIG/config.json` or
`~/.docker/config.json`: a credential helper named for the registry (`credHelpers`), else the
default store (`credsStore`), else a base64 `auth` or an `identitytoken` under `auths`. Helpers
run with a bounded timeout; a missing or failing one falls back to `auths`. Secrets never reach
a repr, a message or a log.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HUB_REGISTRY = "docker.io"
HUB_AUTH_KEY = "https://index.docker.io/v1/"  # Docker Hub's key in config.json and helpers
HELPER_TIMEOUT = 10.0
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_IDENTITY_USER = "<token>"  # what helpers answer as user name for an identity token


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token; secrets stay out of repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def basic(self) -> str | None:
        """The `Authorization` value for HTTP Basic, if there is a user name and password."""
        if not self.username or not self.password:
            return None
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def auth_key(registry: str) -> str:
    """The key `docker login` stores a registry's credentials under."""
    return HUB_AUTH_KEY if registry == HUB_REGISTRY else registry


def default_config_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker"


class DockerCredentials:
    """Credentials as the Docker CLI finds them: a helper first, then `auths` in config.json."""

    def __init__(self, config_dir: Path, environ: Mapping[str, str]) -> None:
        self.path = config_dir / "config.json"
        self._environ = environ
        self._config: dict[str, Any] | None = None
        self.problem: str | None = None  # why the config was ignored, once it was read
        self._found: dict[str, Credentials | None] = {}

    def lookup(self, registry: str, deadline: float | None = None) -> Credentials | None:
        """What `docker login` stored for `registry`; asked once, then remembered."""
        if registry not in self._found:
            self._found[registry] = self._lookup(registry, deadline)
        return self._found[registry]

    def _lookup(self, registry: str, deadline: float | None) -> Credentials | None:
        config = self._load()
        key = auth_key(registry)
        helper = _helper_name(config, registry, key)
        if helper:
            found = self._from_helper(helper, key, deadline)
            if found is not None:
                return found
        return _from_auths(config.get("auths"), registry, key)

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            self._config, self.problem = _read_config(self.path)
            if self.problem:
                log.warning(
                    "ignoring the Docker config %s: %s; fix or remove it", self.path, self.problem
                )
        return self._config

    def describe(self) -> str:
        """The config for a message: its path, and why it was ignored if it was."""
        return f"{self.path}, ignored: {self.problem}" if self.problem else str(self.path)

    def _from_helper(self, helper: str, server: str, deadline: float | None) -> Credentials | None:
        program = None
        if _HELPER_NAME.fullmatch(helper):
            program = shutil.which(f"docker-credential-{helper}", path=self._environ.get("PATH"))
        if program is None:
            log.info("credential helper docker-credential-%s not found; skipping it", helper)
            return None
        timeout = HELPER_TIMEOUT
        if deadline is not None:
            timeout = max(0.1, min(timeout, deadline - time.monotonic()))
        try:
            done = subprocess.run(  # noqa: S603 - a fixed argv, the helper Docker itself runs
                [program, "get"],
                input=server.encode(),
                capture_output=True,
                timeout=timeout,
                env=dict(self._environ),
                check=False,
            )
        except (subprocess.TimeoutExpired, OSError) as err:
            log.warning("credential helper %s failed (%s); skipping it", helper, type(err).__name__)
            return None
        if done.returncode != 0:
            log.info("credential helper %s has no credentials for %s", helper, server)
            return None
        return _parse_helper_answer(done.stdout, helper)


def _read_config(path: Path) -> tuple[dict[str, Any], str | None]:
    """The config, or `{}` and what is wrong with it (a warning, never a failure)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except ValueError as err:
        return {}, f"it is not valid JSON ({err})"
    except OSError as err:
        return {}, err.strerror or type(err).__name__
    return (data, None) if isinstance(data, dict) else ({}, "it is not a JSON object")


def _helper_name(config: Mapping[str, Any], registry: str, key: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for name in (key, registry):
            if isinstance(helpers.get(name), str) and helpers[name]:
                return str(helpers[name])
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _parse_helper_answer(stdout: bytes, helper: str) -> Credentials | None:
    try:
        answer = json.loads(stdout)
        user, secret = str(answer.get("Username") or ""), str(answer.get("Secret") or "")
    except (ValueError, AttributeError):
        log.warning("credential helper %s answered something that is not its JSON", helper)
        return None
    if not secret:
        return None
    if user == _IDENTITY_USER:
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


def _from_auths(auths: object, registry: str, key: str) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    entry = auths.get(key) or auths.get(registry)
    if entry is None:
        entry = next((v for k, v in auths.items() if registry_host(k) == registry), None)
    return _parse_auth_entry(entry, registry) if isinstance(entry, dict) else None


def _parse_auth_entry(entry: Mapping[str, Any], registry: str) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            log.warning("the Docker config entry for %s has an unreadable 'auth'", registry)
            return None
        return Credentials(user, password)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def registry_host(entry: str) -> str:
    """`host[:port]` of a registry named with or without a scheme or path (config keys vary)."""
    entry = entry.strip()
    for prefix in ("https://", "http://"):
        entry = entry.removeprefix(prefix)
    return entry.split("/", 1)[0]
