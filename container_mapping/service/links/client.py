"""A small client of the mapping service's own API, for `link` and `trace`.

Its errors are the ones a person at a terminal can act on, each on one line: the service is not
reachable, the key was refused, the thing asked about is unknown. The API key travels only in
the `Authorization` header and never appears in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from container_mapping import USER_AGENT
from container_mapping.errors import ApiError, ConfigError
from container_mapping.http import redact

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "CONTAINER_MAPPING_SERVER"
KEY_ENV = "CONTAINER_MAPPING_API_KEY"


class ServiceUnreachable(ApiError):
    """No answer at all from the service."""


class NotFound(ApiError):
    """The service knows nothing of what was asked (or it belongs to another organization)."""


class ServiceClient:
    def __init__(self, server: str | None, api_key: str | None, timeout: float = 30.0) -> None:
        self.server = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
        key = api_key or os.environ.get(KEY_ENV)
        if not key:
            raise ConfigError(f"no API key: give --api-key or set {KEY_ENV}")
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"--server must be an http:// or https:// URL, not {self.server!r}")
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            headers={"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        return self._send("GET", path, params=dict(params))

    def post(self, path: str, body: Any) -> Any:
        return self._send("POST", path, json=body)

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ServiceUnreachable(
                f"the mapping service at {redact(self.server)} is not reachable "
                f"({type(err).__name__}): start it, or give --server / {SERVER_ENV}"
            ) from err
        if response.is_success:
            try:
                return response.json()
            except ValueError as err:
                raise ApiError("the service answered something that is not JSON") from err
        raise _error(response, self.server)


def _error(response: httpx.Response, server: str) -> ApiError:
    status, detail = response.status_code, _detail(response)
    where = redact(server)
    if status == 401:
        return ApiError(
            f"the service at {where} refused the API key (401): check --api-key / {KEY_ENV}", 401
        )
    if status == 403:
        return ApiError(f"the API key may not do this (403): {detail}", 403)
    if status == 404:
        return NotFound(f"not found (404): {detail}", 404)
    return ApiError(f"the service at {where} answered HTTP {status}: {detail}", status)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)[:300] if detail else response.reason_phrase
