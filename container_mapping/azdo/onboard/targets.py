"""Which organizations a run covers, and the URL the SDK starts from for each.

A name becomes a URL through `--org-url` (default `https://dev.azure.com/{org}`); a URL is
used as given (an Azure DevOps Server collection, `https://{org}.visualstudio.com`, or a
stand-in), and every other host is then found through that URL's resource areas.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from container_mapping.azdo.onboard.model import Target
from container_mapping.errors import ConfigError

logger = logging.getLogger(__name__)
DEFAULT_ORG_URL = "https://dev.azure.com/{org}"
DEFAULT_ACCOUNTS_URL = "https://app.vssps.visualstudio.com"
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,48}[A-Za-z0-9]?$")


def target(text: str, org_url: str) -> Target:
    text = text.strip()
    if text.lower().startswith(("https://", "http://")):
        return _from_url(text)
    if not _ORG.match(text):
        raise ConfigError(
            f"{text!r} is neither an organization name (letters, digits, '-') nor a URL"
        )
    return Target(text, org_url_for(text, org_url))


def listed(names: list[str], org_url: str) -> list[Target]:
    """Organizations the accounts route named; a name that is not one is skipped, with a word."""
    found = []
    for name in names:
        if _ORG.match(name):
            found.append(Target(name, org_url_for(name, org_url)))
        else:
            logger.warning("skipped %r from the accounts list: not an organization name", name[:60])
    return found


def org_url_for(name: str, template: str) -> str:
    if "{org}" not in template:
        raise ConfigError(f"--org-url {template!r} must contain {{org}}")
    return template.replace("{org}", name).rstrip("/")


def _from_url(text: str) -> Target:
    parts = urlsplit(text)
    if not parts.hostname or parts.username or parts.password or parts.query:
        raise ConfigError(
            f"{_safe(text)} is not an organization URL: give https://dev.azure.com/ORG or a "
            "collection URL, without credentials or a query"
        )
    path = [segment for segment in parts.path.split("/") if segment]
    if path:
        name = path[-1]
    elif parts.hostname.endswith(".visualstudio.com"):
        name = parts.hostname.split(".")[0]
    else:
        raise ConfigError(f"{text}: which organization? Add it to the path, as dev.azure.com/ORG")
    return Target(name, text.rstrip("/"))


def _safe(text: str) -> str:
    """A URL for an error message, with any user:password@ removed."""
    parts = urlsplit(text)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}"
