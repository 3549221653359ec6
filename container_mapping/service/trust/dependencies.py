"""The dependencies every route declares: who may call it, verified before the route runs.

`pipeline_caller` is for writes from jobs (a verified Azure DevOps pipeline token);
`require_scope("read")` / `require_scope("link")` for API-key holders. Both mark themselves
with `AUTH_MARK`, and a test walks the app's routes and fails for any that declares neither.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from container_mapping.service.errors import forbidden, unauthorized
from container_mapping.service.trust import apikeys, tokens
from container_mapping.service.trust.jwks import NotCached
from container_mapping.service.trust.models import ApiCaller, PipelineCaller

AUTH_MARK = "__container_mapping_auth__"

_bearer = HTTPBearer(auto_error=False, description="An Azure DevOps pipeline OIDC token")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


def _marked(function: Callable[..., Any]) -> Callable[..., Any]:
    setattr(function, AUTH_MARK, True)
    return function


class _PipelineToken(HTTPBearer):
    """The job whose verified pipeline token came with the request.

    One dependency that is also the OpenAPI security scheme: FastAPI works out a cache key for
    every dependency of every request, and a nested bearer scheme doubled that work on the
    busiest route. Verified on the event loop while its key is cached (a signature check is
    tens of microseconds, a thread hop costs more); a key that needs fetching is fetched in a
    thread.
    """

    async def __call__(self, request: Request) -> PipelineCaller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise unauthorized("a bearer token (the job's Azure DevOps OIDC token) is required")
        state = request.app.state
        token = credentials.credentials
        try:
            claims = tokens.verify(token, state.settings, state.keys, fetch=False)
        except NotCached:
            claims = await run_in_threadpool(tokens.verify, token, state.settings, state.keys)
        return tokens.pipeline_caller(claims)


pipeline_caller = _marked(
    _PipelineToken(auto_error=False, description="An Azure DevOps pipeline OIDC token")
)


def api_caller(request: Request, key: str | None) -> ApiCaller:
    """The holder of `key`, or 401; shared by `require_scope` and anything taking a key."""
    if not key:
        raise unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
    caller = apikeys.caller_for_key(request.app.state.settings, key)
    if caller is None:
        raise unauthorized("the API key is not valid")
    return caller


def require_scope(scope: str) -> Callable[..., ApiCaller]:
    """A dependency admitting API keys that hold `scope` (`read` or `link`)."""

    @_marked
    def dependency(
        request: Request,
        header_key: Annotated[Optional[str], Depends(_api_key_header)],
        credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
    ) -> ApiCaller:
        key = header_key or (credentials.credentials if credentials else None)
        caller = api_caller(request, key)
        if scope not in caller.scopes:
            raise forbidden(f"this API key lacks the {scope!r} scope")
        return caller

    dependency.__name__ = f"require_{scope}"
    return dependency


reader = require_scope("read")
linker = require_scope("link")

PipelineCallerDep = Annotated[PipelineCaller, Depends(pipeline_caller)]
ReaderDep = Annotated[ApiCaller, Depends(reader)]
LinkerDep = Annotated[ApiCaller, Depends(linker)]


def is_auth_dependency(call: Any) -> bool:
    return bool(getattr(call, AUTH_MARK, False))
