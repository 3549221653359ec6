"""The package's error hierarchy: one base class, one subclass per layer.

The CLI catches only `Error`; everything else is a bug and gets a traceback.
"""

from __future__ import annotations


class Error(Exception):
    """Base of every error this package raises on purpose."""


class InvalidReference(Error):
    """An image reference does not follow the distribution reference grammar."""


class ConfigError(Error):
    """A flag, an environment variable or a configuration file is wrong."""


class EngineUnavailable(Error):
    """No Docker engine answered at the configured address."""


class EngineError(Error):
    """The Docker engine answered, but not as its API promises."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RegistryError(Error):
    """A registry could not be asked for a manifest digest."""


class ApiError(Error):
    """A remote service (Azure DevOps, Defender, the mapping service) refused a request."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
