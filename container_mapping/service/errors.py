"""The service's error: an HTTP status, a reason for the caller, the field at fault if any.

Raised anywhere below a route and turned into `{"error": ..., "field": ...}` by the app. The
reason is written for the caller (what was wrong and what to do) and never carries a token, a
key or a stored record of another organization.
"""

from __future__ import annotations

from collections.abc import Mapping

from container_mapping.errors import ApiError


class ServiceError(ApiError):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status_code)
        self.status_code: int = status_code
        self.field = field
        self.headers = dict(headers or {})


def unauthorized(message: str) -> ServiceError:
    return ServiceError(401, message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str, field: str | None = None) -> ServiceError:
    return ServiceError(403, message, field=field)


def invalid(message: str, field: str | None = None) -> ServiceError:
    return ServiceError(422, message, field=field)
