"""Image references, parsed and normalised by the distribution reference grammar.

The grammar is the one Docker and every OCI registry use (distribution/reference):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]
    tag        := [\\w][\\w.-]{0,127}

Normalisation follows Docker's: a first component that has no `.` or `:` and is not
`localhost` is part of the path on Docker Hub (`docker.io`), and one-component Hub names get
`library/` (`nginx` is `docker.io/library/nginx`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from container_mapping.errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
DOMAIN_RE = re.compile(_DOMAIN)
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # `\w` as Go reads it: ASCII
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")
NAME_MAX_LENGTH = 255


def check_digest(value: str) -> str:
    """Return `value` if it is a `sha256:` digest of 64 lower-case hex digits."""
    if not DIGEST_RE.fullmatch(value):
        raise InvalidReference(
            f"invalid digest {value!r}: expected 'sha256:' followed by 64 lower-case hex digits"
        )
    return value


@dataclass(frozen=True, order=True)
class ImageReference:
    """A normalised image reference: `registry/repository[:tag][@digest]`."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not DOMAIN_RE.fullmatch(self.registry):
            raise InvalidReference(f"invalid registry {self.registry!r}")
        if not PATH_RE.fullmatch(self.repository):
            raise InvalidReference(_repository_problem(self.repository))
        if len(self.name) > NAME_MAX_LENGTH:
            raise InvalidReference(f"image name longer than {NAME_MAX_LENGTH} characters")
        if self.tag is not None and not TAG_RE.fullmatch(self.tag):
            raise InvalidReference(
                f"invalid tag {self.tag!r}: up to 128 letters, digits, '_', '.' or '-', "
                "not starting with '.' or '-'"
            )
        if self.digest is not None:
            check_digest(self.digest)

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse `text` as Docker does, with Docker Hub as the default registry."""
        if not text or text != text.strip():
            raise InvalidReference(f"invalid reference {text!r}: empty or padded with spaces")
        rest, digest = _split_digest(text)
        name, tag = _split_tag(rest)
        if _ANCHORED_ID.fullmatch(name):
            raise InvalidReference(
                f"invalid reference {text!r}: a 64-hex-digit name is an image id, not a name"
            )
        registry, repository = _split_domain(name)
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """`registry/repository`, the key a registry and `RepoDigests` use."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The short form Docker prints: `nginx` for `docker.io/library/nginx`."""
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        return self.repository.removeprefix("library/")

    def with_digest(self, digest: str | None) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    rest, digest = text.rsplit("@", 1)
    return rest, check_digest(digest)


def _split_tag(text: str) -> tuple[str, str | None]:
    slash, colon = text.rfind("/"), text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1 :]
    return text, None


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    is_domain = sep and (
        "." in first or ":" in first or first == "localhost" or first != first.lower()
    )
    if is_domain:
        registry, repository = first, remainder
    else:
        registry, repository = DEFAULT_REGISTRY, name
    if registry in _HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def _repository_problem(repository: str) -> str:
    if repository != repository.lower() and PATH_RE.fullmatch(repository.lower()):
        return f"invalid repository {repository!r}: repository names must be lower case"
    return (
        f"invalid repository {repository!r}: components of lower-case letters and digits, "
        "joined by '/', with '.', '_', '__' or '-' inside a component"
    )
